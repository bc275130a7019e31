// Command image builds OCI image tarballs without a container engine, the
// way ko does (internal/image): the operator's (`make image`) and, with
// --e2e, the pause and test-client images the real-node e2e loads.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/image"
)

func main() {
	out := flag.String("out", "bin/images", "directory the image tarballs are written to")
	ref := flag.String("ref", "ghcr.io/apikey-operator/apikey-operator:v0.1.0", "name and tag of the operator's image (the chart's default image)")
	e2e := flag.Bool("e2e", false, "also build the pause and e2e test-client images")
	pause := flag.String("pause-ref", "registry.k8s.io/pause:3.10.1", "name of the pause image (hack/versions.env PAUSE_IMAGE)")
	client := flag.String("client-ref", ClientImage, "name of the e2e test-client image")
	ca := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the operator's image")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go run ./hack/image [flags]\n\nBuilds static binaries and writes them as OCI image tarballs (docker-load\nand `ctr images import` format) into --out:\n  apikey-operator.tar  the operator (what the Dockerfile builds)\n  pause.tar, e2e-client.tar  with --e2e\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*out, *ref, *pause, *client, *ca, *e2e); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// ClientImage is the default name of the e2e's test-client image.
const ClientImage = "apikey-operator.local/e2e-client:dev"

// build is one image: a main package, its tarball and name, its spec.
type build struct {
	pkg, file, ref string
	spec           func(bin string) image.Spec
}

func run(out, ref, pauseRef, clientRef, ca string, e2e bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "apikey-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	builds := []build{{".", "apikey-operator.tar", ref, func(bin string) image.Spec { return image.Operator(bin, ca) }}}
	if e2e {
		builds = append(builds,
			build{"./test/e2e/pause", "pause.tar", pauseRef, func(bin string) image.Spec { return image.Static(bin, "/pause") }},
			build{"./test/e2e/client", "e2e-client.tar", clientRef, func(bin string) image.Spec { return image.Static(bin, "/e2e-client") }})
	}
	for _, b := range builds {
		start := time.Now()
		bin := filepath.Join(tmp, filepath.Base(b.file))
		// Static, as the Dockerfile builds it: no libc in the image.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b.pkg, err)
		}
		img, err := image.Build(b.spec(bin))
		if err != nil {
			return err
		}
		path := filepath.Join(out, b.file)
		if err := image.WriteTarball(path, b.ref, img); err != nil {
			return err
		}
		digest, _ := img.Digest()
		fmt.Printf("image %s -> %s (%s, %s)\n", b.ref, path, digest.String()[:19], time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}
