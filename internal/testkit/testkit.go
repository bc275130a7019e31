// Package testkit holds what the envtest suites share: a log buffer the
// logger may write to from many goroutines, a register of the plaintext
// tokens a test saw, and the search for those tokens where they must
// never appear. It is imported by tests only.
package testkit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
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
// tokens in any of its forms (Needles): plain, hex, or base64 (standard
// or URL alphabet) at any byte alignment inside a larger encoded blob.
// A report names the token by number, the form, the place and the text
// around the hit with the token itself replaced, so a failing test does
// not leak it either.
func Leaks(tokens []string, haystacks map[string]string) []string {
	places := make([]string, 0, len(haystacks))
	for place := range haystacks {
		places = append(places, place)
	}
	sort.Strings(places)
	needles := make([][]Needle, len(tokens))
	for i, tok := range tokens {
		if tok != "" {
			needles[i] = Needles(tok)
		}
	}
	var found []string
	for i := range tokens {
		for _, place := range places {
			text := haystacks[place]
			for _, n := range needles[i] {
				at := strings.Index(text, n.Text)
				if at < 0 {
					continue
				}
				lo, hi := max(0, at-120), min(len(text), at+len(n.Text)+60)
				found = append(found, fmt.Sprintf("token #%d (%s) in %s at byte %d: %q", i, n.Form, place, at, redact(text[lo:hi], needles)))
				break // one report per token and place
			}
		}
	}
	return found
}

// redact replaces every form of every token in text by its number.
func redact(text string, needles [][]Needle) string {
	for i, forms := range needles {
		for _, n := range forms {
			text = strings.ReplaceAll(text, n.Text, fmt.Sprintf("<token #%d>", i))
		}
	}
	return text
}

// Needle is one form of a token that must not appear.
type Needle struct {
	Form string // plain, hex, base64, base64url (with the byte alignment)
	Text string
}

// Needles are the forms of a token a leak scan looks for: the token, its
// hex encoding, and its base64 encoding (standard and URL alphabets) at
// each of the three byte alignments it can have inside a larger base64
// blob (a Secret's data, a body encoded in a log): for each alignment,
// the characters made of the token's bits only.
func Needles(tok string) []Needle {
	out := []Needle{{"plain", tok}, {"hex", hex.EncodeToString([]byte(tok))}}
	for pad := 0; pad < 3; pad++ {
		for _, enc := range []struct {
			name string
			*base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
			s := enc.EncodeToString(append(make([]byte, pad), tok...))
			from := (pad*8 + 5) / 6        // first character made of token bits only
			to := (pad + len(tok)) * 8 / 6 // last character made of token bits only
			out = append(out, Needle{fmt.Sprintf("%s, offset %d", enc.name, pad), s[from:to]})
		}
	}
	return out
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
