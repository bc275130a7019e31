package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// finalStage is what the Dockerfile's last stage says about the image.
type finalStage struct {
	From, User, Binary string
	Entrypoint         []string
	Labels             map[string]string
}

// parseDockerfile reads the final stage's FROM, COPY --from, USER,
// ENTRYPOINT and LABEL instructions (with line continuations).
func parseDockerfile(t *testing.T, path string) finalStage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var st finalStage
	label := regexp.MustCompile(`([a-z0-9.\-]+)="([^"]*)"`)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			st = finalStage{From: f[len(f)-1], Labels: map[string]string{}}
			if len(f) > 2 && strings.EqualFold(f[len(f)-2], "AS") {
				st.From = f[len(f)-3]
			}
		case "COPY":
			st.Binary = f[len(f)-1]
		case "USER":
			st.User = f[1]
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.Join(f[1:], " ")), &st.Entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not an exec-form JSON array: %v", err)
			}
		case "LABEL":
			for _, m := range label.FindAllStringSubmatch(line, -1) {
				st.Labels[m[1]] = m[2]
			}
		}
	}
	return st
}

// The Dockerfile (for people with an engine) and `make image` (this
// package) must describe the same image.
func TestDockerfileAndMakeImageDescribeTheSameImage(t *testing.T) {
	df := parseDockerfile(t, filepath.Join("..", "..", "Dockerfile"))
	spec := Operator("unused", "")
	if !strings.HasPrefix(df.From, "gcr.io/distroless/static") || !strings.HasSuffix(df.From, ":nonroot") {
		t.Errorf("Dockerfile base %q: the image built here reproduces distroless/static:nonroot (user %d, CA certificates, no shell); change both together", df.From, NonRoot)
	}
	got := finalStage{From: df.From, User: spec.User, Binary: spec.Path, Entrypoint: spec.Entrypoint, Labels: spec.Labels}
	if diff := cmp.Diff(df, got); diff != "" {
		t.Errorf("Dockerfile (-) and internal/image.Operator (+) differ:\n%s", diff)
	}
}

// The built image has what the chart's security context needs and nothing
// a shell-based attack could use: user 65532, the binary, CA certificates,
// a writable /tmp, no /bin/sh.
func TestOperatorImageContents(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "op")
	if err := os.WriteFile(bin, []byte("\x7fELF fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Build(Operator(bin, ca))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "img.tar")
	if err := WriteTarball(path, "example.com/op:v1", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || cfg.OS != "linux" || !cmp.Equal(cfg.Config.Entrypoint, []string{OperatorBinary}) {
		t.Errorf("config: user %q, os %q, entrypoint %q", cfg.Config.User, cfg.OS, cfg.Config.Entrypoint)
	}
	if diff := cmp.Diff(OperatorLabels, cfg.Config.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(mutate.Extract(back))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = h
	}
	for _, want := range []string{OperatorBinary, CACertificates, "/tmp", "/etc/passwd", "/home/nonroot"} {
		if files[want] == nil {
			t.Errorf("image lacks %s", want)
		}
	}
	for _, shell := range []string{"/bin/sh", "/bin/bash", "/bin/busybox"} {
		if files[shell] != nil {
			t.Errorf("image has a shell: %s", shell)
		}
	}
	if h := files["/tmp"]; h != nil && h.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode %o, want sticky and world-writable", h.Mode)
	}
	if h := files[OperatorBinary]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("%s is not executable: %o", OperatorBinary, h.Mode)
	}
	// Same inputs, same digest: fixed timestamps make builds reproducible.
	again, _ := Build(Operator(bin, ca))
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same binary differ: %s vs %s", d1, d2)
	}
}
