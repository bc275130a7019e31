package devenv

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// readVersions reads hack/versions.env, the one place versions are written.
func readVersions(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "hack", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vars[k] = strings.TrimSpace(v)
		}
	}
	return vars
}

func parseMod(t *testing.T, path string) *modfile.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The Kubernetes version is written once, in hack/versions.env; the
// go.mod files that must agree with it are checked here, so a bump that
// misses one fails `make test` instead of building mismatched parts.
func TestKubernetesVersionIsWrittenOnce(t *testing.T) {
	kube := readVersions(t)["KUBE_VERSION"]
	if !strings.HasPrefix(kube, "v1.") {
		t.Fatalf("hack/versions.env: KUBE_VERSION %q is not v1.x.y", kube)
	}
	staging := "v0." + strings.TrimPrefix(kube, "v1.") // k8s.io/api etc.
	minor := staging[:strings.LastIndex(staging, ".")]

	wrapper := parseMod(t, filepath.Join("..", "..", "hack", "controlplane", "go.mod"))
	found := false
	for _, r := range wrapper.Require {
		if r.Mod.Path == "k8s.io/kubernetes" {
			found = true
			if r.Mod.Version != kube {
				t.Errorf("hack/controlplane/go.mod requires k8s.io/kubernetes %s, hack/versions.env says %s", r.Mod.Version, kube)
			}
		}
	}
	if !found {
		t.Error("hack/controlplane/go.mod does not require k8s.io/kubernetes")
	}
	for _, r := range wrapper.Replace {
		if strings.HasPrefix(r.Old.Path, "k8s.io/") && r.New.Version != staging {
			t.Errorf("hack/controlplane/go.mod replaces %s with %s, want %s (KUBE_VERSION %s)", r.Old.Path, r.New.Version, staging, kube)
		}
	}
	// The operator's own client libraries: the same minor as the control
	// plane the tests run it against.
	root := parseMod(t, filepath.Join("..", "..", "go.mod"))
	for _, r := range root.Require {
		switch r.Mod.Path {
		case "k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/apiserver", "k8s.io/component-base":
			if !strings.HasPrefix(r.Mod.Version, minor+".") {
				t.Errorf("go.mod requires %s %s, not Kubernetes %s's minor (%s.x)", r.Mod.Path, r.Mod.Version, kube, minor)
			}
		}
	}
}

// The pause image containerd is pinned to is the one make e2e builds.
func TestPauseImageIsWrittenOnce(t *testing.T) {
	if p := readVersions(t)["PAUSE_IMAGE"]; !strings.HasPrefix(p, "registry.k8s.io/pause:") {
		t.Errorf("hack/versions.env: PAUSE_IMAGE %q", p)
	}
}
