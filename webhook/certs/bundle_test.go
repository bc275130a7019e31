package certs

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"
)

func mustAuthority(t *testing.T, now time.Time, validity time.Duration) *authority {
	t.Helper()
	a, err := newAuthority([]string{"svc.ns.svc", "127.0.0.1"}, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func count(b []byte) int { return len(parseBundle(b)) }

func TestMergeBundleKeepsLiveOwnCAsAndDropsTheRest(t *testing.T) {
	now := time.Now()
	ours := mustAuthority(t, now, time.Hour)
	peer := mustAuthority(t, now, 2*time.Hour)
	expired := mustAuthority(t, now.Add(-2*time.Hour), time.Hour)
	foreign := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")

	got := mergeBundle(ours.caPEM, now, append(append([]byte{}, peer.caPEM...), expired.caPEM...), foreign, ours.caPEM, peer.caPEM)
	if count(got) != 2 || !bytes.Contains(got, ours.caPEM) || !bytes.Contains(got, peer.caPEM) {
		t.Fatalf("bundle holds %d CAs, want ours and the peer's only:\n%s", count(got), got)
	}
	if bytes.Contains(got, expired.caPEM) {
		t.Error("an expired CA was kept")
	}
}

func TestMergeBundleIsTheSameOnEveryReplica(t *testing.T) {
	now := time.Now()
	a, b := mustAuthority(t, now, time.Hour), mustAuthority(t, now, time.Hour)
	fromA := mergeBundle(a.caPEM, now, b.caPEM)
	fromB := mergeBundle(b.caPEM, now, a.caPEM)
	if !bytes.Equal(fromA, fromB) {
		t.Error("two replicas computed different bundles from the same CAs: they would rewrite each other forever")
	}
	if again := mergeBundle(a.caPEM, now, fromA); !bytes.Equal(again, fromA) {
		t.Error("merging an up-to-date bundle changed it")
	}
}

func TestMergeBundleIsBoundedAndKeepsOurs(t *testing.T) {
	now := time.Now()
	ours := mustAuthority(t, now, time.Hour) // the oldest expiry: first to go if ours were not kept
	var many []byte
	for i := range maxBundle + 5 {
		many = append(many, mustAuthority(t, now, 2*time.Hour+time.Duration(i)*time.Minute).caPEM...)
	}
	got := mergeBundle(ours.caPEM, now, many)
	if count(got) != maxBundle || !bytes.Contains(got, ours.caPEM) {
		t.Fatalf("bundle holds %d CAs (ours: %v), want %d including ours", count(got), bytes.Contains(got, ours.caPEM), maxBundle)
	}
}

func TestServingCertificateVerifiesAgainstItsCA(t *testing.T) {
	a := mustAuthority(t, time.Now(), time.Hour)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.caPEM)
	for _, host := range []string{"svc.ns.svc", "127.0.0.1"} {
		if _, err := a.serving.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	if a.renewAt().After(a.notAfter.Add(-20 * time.Minute)) {
		t.Errorf("renewal at %s leaves less than a third of the life before %s", a.renewAt(), a.notAfter)
	}
}
