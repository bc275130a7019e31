package keysecret

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func key(secretName string) *keysv1.ApiKey {
	return &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "billing", UID: "uid-1"},
		Spec:       keysv1.ApiKeySpec{SecretName: secretName},
	}
}

func TestNew(t *testing.T) {
	s := New(key("billing-credentials"), "ak_token")
	if s.Name != "billing-credentials" || s.Namespace != "team-a" || Token(s) != "ak_token" || !IsOurs(s) {
		t.Fatalf("secret %+v", s)
	}
	if s.Labels[keysv1.ApiKeyLabel] != "billing" || metav1.GetControllerOf(s) == nil || metav1.GetControllerOf(s).UID != "uid-1" {
		t.Errorf("labels %v, owner %v", s.Labels, s.OwnerReferences)
	}
	// A key not yet created has no UID to own anything with.
	unborn := key("")
	unborn.UID = ""
	if s := New(unborn, "ak_token"); s.Name != "billing" || len(s.OwnerReferences) != 0 {
		t.Errorf("secret of a key without UID: %s, owners %v", s.Name, s.OwnerReferences)
	}
}

// patches records the merge patches sent through a fake client.
func patches(t *testing.T, objs ...client.Object) (client.Client, *[]string) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := keysv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	var sent []string
	c := interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build(), interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			data, err := p.Data(o)
			if err != nil {
				return err
			}
			sent = append(sent, string(p.Type())+" "+string(data))
			return c.Patch(ctx, o, p, opts...)
		},
	})
	return c, &sent
}

// Claim labels and owns a Secret that lacks it, once; a Secret already
// claimed costs no write.
func TestClaim(t *testing.T) {
	bare := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "billing"}}
	c, sent := patches(t, bare)
	k := key("")
	if err := Claim(context.Background(), c, k, bare); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != 1 || !IsOurs(bare) || metav1.GetControllerOf(bare) == nil {
		t.Fatalf("first claim: patches %v, labels %v, owners %v", *sent, bare.Labels, bare.OwnerReferences)
	}
	if err := Claim(context.Background(), c, k, bare); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != 1 {
		t.Errorf("a claimed Secret was patched again: %v", *sent)
	}
}

func TestOnlyDelivered(t *testing.T) {
	marked := New(key(""), "ak_token")
	marked.Annotations = map[string]string{keysv1.UndeliveredAnnotation: keysv1.UndeliveredValue, keysv1.TokenWriterAnnotation: keysv1.TokenWriterAPIServer}
	delivered := marked.DeepCopy()
	delete(delivered.Annotations, keysv1.UndeliveredAnnotation)
	replaced := delivered.DeepCopy()
	replaced.Data[keysv1.SecretKeyField] = []byte("ak_other")
	relabelled := delivered.DeepCopy()
	relabelled.Labels[keysv1.ApiKeyLabel] = "other"
	for _, c := range []struct {
		what     string
		old, new *corev1.Secret
		want     bool
	}{
		{"the mark removed", marked, delivered, true},
		{"the mark removed and the token replaced (a retried create)", marked, replaced, false},
		{"the mark removed and the labels changed", marked, relabelled, false},
		{"no mark before", delivered, delivered.DeepCopy(), false},
		{"the mark added", delivered, marked, false},
	} {
		if got := OnlyDelivered(c.old, c.new); got != c.want {
			t.Errorf("%s: %v, want %v", c.what, got, c.want)
		}
	}
}
