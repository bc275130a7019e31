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

func holders(t *testing.T, x *Index, hash string) []string {
	t.Helper()
	got, err := x.Holders(hash)
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

// A declared spec.tokenHash is held from the key's creation, before the
// controller records it, and only Holders says so: Claimants stays the
// keys that verify with a hash, so a key that declares a hash another key
// verifies with never takes it from that key.
func TestDeclaredHashes(t *testing.T) {
	x := New()
	if _, err := x.Holders("sha256:d"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before the sync: %v, want ErrNotSynced", err)
	}
	x.MarkSynced()
	h := x.Handler()
	declared := func(ns, name, hash string) *keysv1.ApiKey {
		k := key(ns, name, "")
		k.Spec.TokenHash = keysv1.TokenHash(hash)
		return k
	}
	d1 := declared("n1", "d", "sha256:d")
	h.OnAdd(d1, false)
	if got := holders(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d"}) {
		t.Fatalf("declared, not yet recorded: holders %v", got)
	}
	if got := claimants(t, x, "sha256:d"); len(got) != 0 {
		t.Fatalf("declared, not yet recorded: claimants %v", got)
	}
	// Recorded: named once, by both.
	d2 := d1.DeepCopy()
	d2.Status.Hash = "sha256:d"
	h.OnUpdate(d1, d2)
	if got := holders(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d"}) {
		t.Fatalf("recorded: holders %v", got)
	}
	if got := claimants(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d"}) {
		t.Fatalf("recorded: claimants %v", got)
	}
	// A second key declaring it (a race past the webhook): a holder, not a
	// claimant, so the first key keeps its token.
	h.OnAdd(declared("n2", "e", "sha256:d"), false)
	if got := holders(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d", "n2/e"}) {
		t.Fatalf("declared twice: holders %v", got)
	}
	if got := claimants(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d"}) {
		t.Fatalf("declared twice: claimants %v", got)
	}
	// Rotation: the new hash is held at once, the old one still verifies.
	d3 := d2.DeepCopy()
	d3.Spec.TokenHash = "sha256:d2"
	h.OnUpdate(d2, d3)
	if got := holders(t, x, "sha256:d2"); !slices.Equal(got, []string{"n1/d"}) {
		t.Fatalf("new declared hash: holders %v", got)
	}
	if got := holders(t, x, "sha256:d"); !slices.Equal(got, []string{"n1/d", "n2/e"}) {
		t.Fatalf("old hash: holders %v", got)
	}
	h.OnDelete(d3)
	if got := holders(t, x, "sha256:d2"); len(got) != 0 {
		t.Fatalf("after the delete: %v", got)
	}
}
