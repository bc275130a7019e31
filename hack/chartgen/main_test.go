package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValuesTable(t *testing.T) {
	got, err := valuesTable([]byte(`
# A header that documents nothing.

image:
  # -- Image repository.
  repository: example.com/op
  # -- Tag; a long
  # description over two lines | with a pipe.
  tag: ""
# -- Namespaces.
watchNamespaces: []
resources:
  # -- Requests.
  requests: {cpu: 10m}
nested:
  deeper:
    # -- A number.
    n: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	want := "| value | type | default | description |\n|---|---|---|---|\n" +
		"| `image.repository` | string | `\"example.com/op\"` | Image repository. |\n" +
		"| `image.tag` | string | `\"\"` | Tag; a long description over two lines \\| with a pipe. |\n" +
		"| `watchNamespaces` | list | `[]` | Namespaces. |\n" +
		"| `resources.requests` | object | `{\"cpu\":\"10m\"}` | Requests. |\n" +
		"| `nested.deeper.n` | int | `3` | A number. |\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestValuesTableRefusesUndocumented(t *testing.T) {
	_, err := valuesTable([]byte("image:\n  # -- Documented.\n  repository: x\n  tag: v1\n"))
	if err == nil || !strings.Contains(err.Error(), "value image.tag has no") {
		t.Errorf("undocumented value: %v", err)
	}
}

// The real chart: every value is documented, and the README holds the table.
func TestChartIsGenerated(t *testing.T) {
	if err := run(filepath.Join("..", ".."), true); err != nil {
		t.Error(err)
	}
}

func TestCRDTemplateEscapesTemplateActions(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, crdSrcDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	crd := "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  annotations:\n    x: y\n  name: a.b\nspec:\n  description: use {{ .Values }}\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(crd), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := crdTemplates(root)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out["a.yaml"])
	for _, want := range []string{
		"{{- if .Values.crds.enabled }}\n",
		"metadata:\n  labels:\n    {{- include \"apikey-operator.labels\" . | nindent 4 }}\n" +
			"  annotations:\n    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n" +
			"    x: y\n  name: a.b\n",
		`use {{ "{{" }} .Values }}`,
		"{{- end }}\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("template lacks %q:\n%s", want, got)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := crdTemplates(root); err == nil {
		t.Error("a file that is not a controller-gen CRD was accepted")
	}
}
