package install

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

// TestAPIServerSecretPolicy installs the chart's ValidatingAdmissionPolicy
// with the API server's ClusterRole, then acts as the API server's
// ServiceAccount (impersonation) against a real kube-apiserver: what the
// API server does to its own Secrets is allowed, everything else its RBAC
// would allow on Secrets is refused (issue 11, point 6). config/default
// ships the same policy.
func TestAPIServerSecretPolicy(t *testing.T) {
	chart := objects(t, helmTemplate(t))
	var install []string
	for _, o := range chart {
		switch {
		case o.GetKind() == "ValidatingAdmissionPolicy" || o.GetKind() == "ValidatingAdmissionPolicyBinding",
			strings.HasPrefix(o.GetKind(), "ClusterRole") && o.GetName() == release+"-apiserver",
			o.GetKind() == "ServiceAccount" && o.GetName() == release+"-apiserver":
			install = append(install, toYAML(t, []*unstructured.Unstructured{o}))
		}
	}
	if len(install) != 5 {
		t.Fatalf("want the policy, its binding, the API server's ClusterRole, binding and ServiceAccount; got %d objects", len(install))
	}
	kust := objects(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "default")))
	if diff := cmp.Diff(find(t, chart, "ValidatingAdmissionPolicy", release+"-apiserver-secrets").Object["spec"],
		find(t, kust, "ValidatingAdmissionPolicy", release+"-apiserver-secrets").Object["spec"]); diff != "" {
		t.Errorf("the chart's and config/default's policies differ (-chart +kustomize):\n%s", diff)
	}

	env := startControlPlane(t)
	createNamespaces(t, env, releaseNS, "tenant")
	applyManifest(t, env, strings.Join(install, "\n---\n"), false)

	ctx := context.Background()
	admin, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + releaseNS + ":" + release + "-apiserver",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
	}
	sa, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	owned := map[string]string{keysv1.ManagedByLabel: keysv1.ManagedByValue, keysv1.ApiKeyLabel: "billing"}
	secret := func(name string, labels map[string]string, typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: name, Labels: labels}, Type: typ,
			Data: map[string][]byte{keysv1.SecretKeyField: []byte("x")}}
	}
	// kube-apiserver enforces a new policy once its informer has it.
	probe := 0
	eventually(t, 30*time.Second, "the policy in force", func() error {
		probe++
		s := secret(fmt.Sprintf("probe-%d", probe), nil, corev1.SecretTypeOpaque)
		if err := sa.Create(ctx, s); err == nil {
			_ = admin.Delete(ctx, s)
			return errors.New("an unlabelled Secret was still created")
		}
		return nil
	})
	if err := admin.Create(ctx, secret("database-password", nil, corev1.SecretTypeOpaque)); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, secret("owned-by-admin", owned, corev1.SecretTypeOpaque)); err != nil {
		t.Fatal("the policy must not touch other users:", err)
	}
	patch := func(name, body string) error {
		return sa.Patch(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: name}}, client.RawPatch(types.MergePatchType, []byte(body)))
	}
	allowed := map[string]func() error{
		"create an Opaque Secret with both labels": func() error { return sa.Create(ctx, secret("billing", owned, corev1.SecretTypeOpaque)) },
		"patch it (owner reference, data)": func() error {
			return patch("billing", `{"metadata":{"annotations":{"x":"y"}},"data":{"api-key":"eQ=="}}`)
		},
		"delete it": func() error {
			return sa.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "billing"}})
		},
	}
	for _, name := range []string{"create an Opaque Secret with both labels", "patch it (owner reference, data)", "delete it"} {
		if err := allowed[name](); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
	refused := map[string]func() error{
		"create a Secret without the labels": func() error { return sa.Create(ctx, secret("plain", nil, corev1.SecretTypeOpaque)) },
		"create a Secret with only managed-by": func() error {
			return sa.Create(ctx, secret("half", map[string]string{keysv1.ManagedByLabel: keysv1.ManagedByValue}, corev1.SecretTypeOpaque))
		},
		"create a ServiceAccount token Secret, labelled": func() error {
			s := secret("token", owned, corev1.SecretTypeServiceAccountToken)
			s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
			return sa.Create(ctx, s)
		},
		"patch a Secret that is not the operator's": func() error { return patch("database-password", `{"data":{"password":"eA=="}}`) },
		"label a Secret that is not the operator's": func() error {
			return patch("database-password", `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"apikey-operator","keys.apikey-operator.io/apikey":"x"}}}`)
		},
		"remove the labels from the operator's Secret": func() error {
			return patch("owned-by-admin", `{"metadata":{"labels":{"app.kubernetes.io/managed-by":null}}}`)
		},
		"delete a Secret that is not the operator's": func() error {
			return sa.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "database-password"}})
		},
	}
	for name, do := range refused {
		err := do()
		if err == nil {
			t.Errorf("%s: allowed", name)
			continue
		}
		if !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") || !strings.Contains(err.Error(), "apikey-operator API server may") {
			t.Errorf("%s: refused, but not by the policy: %v", name, err)
		}
	}
	got := &corev1.Secret{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "tenant", Name: "database-password"}, got); err != nil || string(got.Data["password"]) != "" || got.Labels != nil {
		t.Errorf("the foreign Secret changed: %v %v", err, got.Labels)
	}
}
