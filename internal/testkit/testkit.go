// Package testkit holds what the envtest suites share: a log buffer the
// logger may write to from many goroutines, a register of the plaintext
// tokens a test saw, and the search for those tokens where they must
// never appear. It is imported by tests only.
package testkit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
)

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
