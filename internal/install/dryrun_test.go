package install

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestServerDryRun applies every value set of the chart, and config/default,
// with `kubectl apply --dry-run=server` to a real kube-apiserver: every
// object passes the API server's validation and admission, with the
// stand-in cert-manager and Prometheus Operator CRDs installed.
func TestServerDryRun(t *testing.T) {
	env := startControlPlane(t)
	installThirdPartyCRDs(t, env)
	createNamespaces(t, env, releaseNS, "team-a", "team-b")

	check := func(t *testing.T, manifest string) {
		t.Helper()
		objs := objects(t, manifest)
		out := applyManifest(t, env, manifest, true)
		for _, o := range objs {
			kind := strings.ToLower(o.GetKind())
			if g := o.GroupVersionKind().Group; g != "" {
				kind += "." + g
			}
			want := fmt.Sprintf("%s/%s", kind, o.GetName())
			if !strings.Contains(out, want+" created (server dry run)") && !strings.Contains(out, want+" configured (server dry run)") &&
				!strings.Contains(out, want+" unchanged (server dry run)") {
				t.Errorf("kubectl did not report %s:\n%s", want, out)
			}
		}
		// Nothing was created.
		if got, _ := tryKubectl(t, env, "", "get", "deployments", "-A", "-o", "name"); strings.TrimSpace(got) != "" {
			t.Fatalf("a dry run created objects: %s", got)
		}
	}
	for _, v := range valueSets {
		t.Run("helm "+v.name, func(t *testing.T) {
			check(t, helmTemplate(t, v.sets...))
		})
	}
	t.Run("kustomize config/default", func(t *testing.T) {
		check(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "default")))
	})
	t.Run("kustomize config/monitoring", func(t *testing.T) {
		check(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "monitoring")))
	})
	// make deploy: the same, with the image replaced by IMG. A stand-in
	// kubectl hands `kustomize` to the real one and keeps what `apply`
	// receives.
	t.Run("make deploy IMG=...", func(t *testing.T) {
		dir := t.TempDir()
		captured := filepath.Join(dir, "applied.yaml")
		fake := filepath.Join(dir, "kubectl")
		script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = apply ]; then cat > %q; else exec %q \"$@\"; fi\n", captured, filepath.Join(binDir(t), "kubectl"))
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		const img = "registry.example.com/team/apikey-operator:v9.9.9"
		run(t, nil, "make", "-s", "-C", repoRoot, "deploy", "IMG="+img, "KUBECTL="+fake)
		b, err := os.ReadFile(captured)
		if err != nil {
			t.Fatal(err)
		}
		objs := objects(t, string(b))
		for _, name := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
			if got := deployment(t, objs, name).Spec.Template.Spec.Containers[0].Image; got != img {
				t.Errorf("make deploy IMG=%s: Deployment %s runs %s", img, name, got)
			}
		}
		check(t, string(b))
	})
	// The dry run is not a formality: the API server refuses a broken
	// object that helm template renders happily.
	t.Run("a broken object is refused", func(t *testing.T) {
		objs := objects(t, helmTemplate(t))
		api := find(t, objs, "APIService", "v1alpha1.access.apikey-operator.io")
		if err := unstructured.SetNestedField(api.Object, int64(0), "spec", "groupPriorityMinimum"); err != nil {
			t.Fatal(err)
		}
		out, err := tryKubectl(t, env, toYAML(t, objs), "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(err.Error(), "groupPriorityMinimum") {
			t.Errorf("dry run of an APIService with groupPriorityMinimum 0: %v\n%s", err, out)
		}
	})
}
