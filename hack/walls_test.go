// Package hack_test proves hack/walls.sh, the check `make verify` runs on
// the walls of docs/architecture.md, fails when a wall is crossed.
package hack_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "github.com/apikey-operator/apikey-operator"

// walls runs hack/walls.sh with an overlay of extra Go files (path in the
// repository: content), as if they were in the tree; the tree itself is
// never touched, so other tests and builds see nothing.
func walls(t *testing.T, extra map[string]string) (string, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "walls.sh"))
	cmd.Env = os.Environ()
	if len(extra) > 0 {
		dir := t.TempDir()
		overlay := map[string]map[string]string{"Replace": {}}
		for path, content := range extra {
			file := filepath.Join(dir, strings.ReplaceAll(path, "/", "_"))
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			overlay["Replace"][filepath.Join(root, path)] = file
		}
		raw, err := json.Marshal(overlay)
		if err != nil {
			t.Fatal(err)
		}
		spec := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(spec, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "GOFLAGS=-overlay="+spec)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// crossing is a file for package pkg (its directory) that imports imp.
func crossing(pkg, imp string) string {
	return "package " + filepath.Base(pkg) + "\n\nimport _ \"" + imp + "\"\n"
}

func TestWallsHold(t *testing.T) {
	out, err := walls(t, nil)
	if err != nil || !strings.Contains(out, "walls hold") {
		t.Fatalf("walls.sh on the tree as it is: %v\n%s", err, out)
	}
}

func TestWallsFailWhenCrossed(t *testing.T) {
	// One crossing import per wall of docs/architecture.md, each with the
	// line walls.sh must print for it.
	cases := []struct {
		dir, pkg, imp, want string
	}{
		{"internal/token", "token", "k8s.io/apimachinery/pkg/types",
			"wall crossed: " + mod + "/internal/token imports k8s.io/apimachinery/pkg/types (internal/token is pure: no Kubernetes)"},
		{"api/v1alpha1", "v1alpha1", mod + "/internal/token",
			"wall crossed: " + mod + "/api/v1alpha1 imports " + mod + "/internal/token (api/ carries no logic)"},
		{"internal/dialect/nexus", "nexus", "sigs.k8s.io/controller-runtime/pkg/client",
			"wall crossed: " + mod + "/internal/dialect/nexus imports sigs.k8s.io/controller-runtime/pkg/client (dialects translate shapes; keystore.Store does the work)"},
		{"internal/verify", "verify", mod + "/internal/dialect/status",
			"wall crossed: " + mod + "/internal/verify imports " + mod + "/internal/dialect/status (the verify path knows no REST shapes)"},
		{"controllers", "controllers", mod + "/internal/dialect/httpjson",
			"wall crossed: " + mod + "/controllers imports " + mod + "/internal/dialect/httpjson (the controller runs without the API server)"},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			out, err := walls(t, map[string]string{c.dir + "/zz_wall_crossing.go": crossing(c.pkg, c.imp)})
			if err == nil {
				t.Fatalf("walls.sh passed with %s importing %s:\n%s", c.dir, c.imp, out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("walls.sh does not say which wall is crossed; want %q in:\n%s", c.want, out)
			}
			if !strings.Contains(out, "see docs/architecture.md, Walls") {
				t.Errorf("walls.sh does not say where the walls are written down:\n%s", out)
			}
		})
	}
}

// A package go list cannot load (here: an import that does not exist)
// must fail the check, not let it pass unseen: go list itself exits 0.
func TestWallsFailWhenListingFails(t *testing.T) {
	out, err := walls(t, map[string]string{"internal/token/zz_broken.go": crossing("token", "example.invalid/nothing")})
	if err == nil {
		t.Fatalf("walls.sh passed although go list failed:\n%s", out)
	}
	if !strings.Contains(out, "walls: go list cannot load "+mod+"/internal/token") || !strings.Contains(out, "example.invalid/nothing") {
		t.Errorf("want the failing go list named in:\n%s", out)
	}
}
