// Package image builds OCI images of static Go binaries without a container
// engine, the way ko does: a minimal base layer produced here (non-root
// user 65532, CA certificates, /tmp, no shell) and one layer with the
// binary, written as a tarball that `ctr images import` (and `docker load`)
// read. Layers carry fixed timestamps, so the same binary gives the same
// image digest.
//
// The operator's image is also described by the repository's Dockerfile,
// for people with an engine; Operator() is this package's description of it
// and a test keeps the two in step (entrypoint, user, labels, binary path).
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is the user every image runs as: distroless' nonroot, which the
// chart's runAsUser matches.
const NonRoot = 65532

// CACertificates is where the base layer puts the CA bundle (and where Go's
// crypto/x509 looks first on Linux).
const CACertificates = "/etc/ssl/certs/ca-certificates.crt"

// Spec describes one image.
type Spec struct {
	// Binary is the static binary on this machine; Path is where it goes.
	Binary, Path string
	// Entrypoint and Args of the image; User as "uid:gid".
	Entrypoint, Args []string
	User             string
	Labels           map[string]string
	// CABundle is the file copied to CACertificates; empty: none (the pause
	// and test-client images need no certificates).
	CABundle string
}

// epoch is every file's and the image's timestamp: reproducible digests.
var epoch = time.Unix(0, 0).UTC()

// Build assembles the image of spec.
func Build(spec Spec) (v1.Image, error) {
	base, err := baseLayer(spec.CABundle)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("read the image's binary: %w", err)
	}
	app, err := layer([]file{{name: spec.Path, mode: 0o755, body: bin}})
	if err != nil {
		return nil, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint: spec.Entrypoint,
			Cmd:        spec.Args,
			User:       spec.User,
			Labels:     spec.Labels,
			WorkingDir: "/",
			Env:        []string{"PATH=/", "SSL_CERT_FILE=" + CACertificates},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, base, app)
}

// WriteTarball writes img as an image tarball tagged ref.
func WriteTarball(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(path+".tmp", tag, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

type file struct {
	name     string
	mode     int64
	dir      bool
	uid, gid int
	body     []byte
}

// baseLayer is what distroless/static gives a static binary: the root and
// nonroot users, their home, a sticky /tmp, and the CA bundle.
func baseLayer(caBundle string) (v1.Layer, error) {
	files := []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: NonRoot, gid: NonRoot},
		{name: "root/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	if caBundle != "" {
		pem, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, fmt.Errorf("read CA certificates for the image (Debian: apt-get install ca-certificates): %w", err)
		}
		files = append(files,
			file{name: "etc/ssl/", mode: 0o755, dir: true},
			file{name: "etc/ssl/certs/", mode: 0o755, dir: true},
			file{name: CACertificates[1:], mode: 0o644, body: pem})
	}
	return layer(files)
}

func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name := f.name
		if len(name) > 0 && name[0] == '/' {
			name = name[1:]
		}
		hdr := &tar.Header{Name: name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: epoch, Format: tar.FormatPAX}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
