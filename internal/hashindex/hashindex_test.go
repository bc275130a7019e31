package hashindex

import (
	"errors"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
)

func key(ns, name, hash string, previous ...string) *keysv1.ApiKey {
	k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	k.Status.Hash = hash
	for _, p := range previous {
		k.Status.PreviousHashes = append(k.Status.PreviousHashes, keysv1.PreviousHash{Hash: p})
	}
	return k
}

func claimants(t *testing.T, x *Index, hash string) []string {
	t.Helper()
	got, err := x.Claimants(hash)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range got {
		out = append(out, n.String())
	}
	slices.Sort(out)
	return out
}

// The index follows adds, rotations (a hash moves to previousHashes, then
// out), conflicts and deletes, as the field index it replaces did.
func TestIndexFollowsEvents(t *testing.T) {
	x := New()
	if _, err := x.Claimants("sha256:a"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the sync: %v, want ErrNotSynced", err)
	}
	x.MarkSynced()
	h := x.Handler()
	a1 := key("n1", "a", "sha256:a")
	h.OnAdd(a1, true)
	h.OnAdd(key("n2", "b", "sha256:b"), true)
	if got := claimants(t, x, "sha256:a"); !slices.Equal(got, []string{"n1/a"}) {
		t.Fatalf("a: %v", got)
	}

	// Rotation: the old hash stays claimed during the grace period.
	a2 := key("n1", "a", "sha256:a2", "sha256:a")
	h.OnUpdate(a1, a2)
	if got := claimants(t, x, "sha256:a"); !slices.Equal(got, []string{"n1/a"}) {
		t.Fatalf("a during the grace period: %v", got)
	}
	a3 := key("n1", "a", "sha256:a2")
	h.OnUpdate(a2, a3)
	if got := claimants(t, x, "sha256:a"); len(got) != 0 {
		t.Fatalf("a after the grace period: %v", got)
	}

	// Two keys claiming one hash: both are named, until one lets go.
	c := key("n3", "c", "sha256:b")
	h.OnAdd(c, false)
	if got := claimants(t, x, "sha256:b"); !slices.Equal(got, []string{"n2/b", "n3/c"}) {
		t.Fatalf("b claimed twice: %v", got)
	}
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "n3/c", Obj: c})
	if got := claimants(t, x, "sha256:b"); !slices.Equal(got, []string{"n2/b"}) {
		t.Fatalf("b after c's delete: %v", got)
	}
	h.OnDelete(a3)
	if got := claimants(t, x, "sha256:a2"); len(got) != 0 {
		t.Fatalf("a2 after a's delete: %v", got)
	}
	if len(x.claims) != 1 {
		t.Fatalf("the index keeps %d hashes, want 1 (b): %v", len(x.claims), x.claims)
	}
	if got, _ := x.Claimants("sha256:b"); len(got) != 1 || got[0] != (types.NamespacedName{Namespace: "n2", Name: "b"}) {
		t.Fatalf("Claimants: %v", got)
	}
}
