// Package testkit holds what the envtest suites share: a log buffer the
// logger may write to from many goroutines, a register of the plaintext
// tokens a test saw, and the search for those tokens where they must
// never appear. It is imported by tests only.
package testkit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// ControlPlane returns the directory of the control plane's binaries
// (KUBEBUILDER_ASSETS) for a test that needs a real kube-apiserver. Under
// go test -short (make test-unit) it skips the test: that tier runs
// without a control plane, in seconds.
func ControlPlane(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the control plane (kube-apiserver, etcd from bin/): run make test")
	}
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run through `make test`, which builds the control plane into bin/ and sets it (or set KUBEBUILDER_ASSETS=$PWD/bin)")
	}
	return dir
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tokens registers the plaintext tokens a suite saw.
type Tokens struct {
	mu   sync.Mutex
	seen []string
}

// Remember adds a token.
func (t *Tokens) Remember(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen = append(t.seen, token)
}

// All returns the tokens seen so far.
func (t *Tokens) All() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.seen...)
}

// Leaks names every place (a key of haystacks) that holds one of the
// tokens, plainly or base64-encoded. The result never holds a token: only
// its number and the place, so a failing test does not leak it either.
func Leaks(tokens []string, haystacks map[string]string) []string {
	var found []string
	for i, tok := range tokens {
		forms := map[string]string{"plain": tok, "base64": base64.StdEncoding.EncodeToString([]byte(tok))}
		for place, text := range haystacks {
			for form, needle := range forms {
				if needle != "" && strings.Contains(text, needle) {
					found = append(found, fmt.Sprintf("token #%d (%s) in %s", i, form, place))
				}
			}
		}
	}
	return found
}

// Perms are ApiKey permissions from strings.
func Perms(ps ...string) []keysv1.Permission {
	out := make([]keysv1.Permission, len(ps))
	for i, p := range ps {
		out[i] = keysv1.Permission(p)
	}
	return out
}

// IPs are ApiKey allowedIPs entries from strings.
func IPs(ps ...string) []keysv1.IPOrCIDR {
	out := make([]keysv1.IPOrCIDR, len(ps))
	for i, p := range ps {
		out[i] = keysv1.IPOrCIDR(p)
	}
	return out
}

// IssuedKey is an ApiKey as the controller leaves it once issued: status
// holds the token's hash and prefix, and the key expires at expires.
func IssuedKey(ns, name, tok string, expires time.Time, mods ...func(*keysv1.ApiKey)) *keysv1.ApiKey {
	k := &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status: keysv1.ApiKeyStatus{
			Hash:      token.Hash(tok),
			KeyPrefix: token.DisplayPrefix(tok),
			ExpiresAt: &metav1.Time{Time: expires},
		},
	}
	for _, m := range mods {
		m(k)
	}
	return k
}
