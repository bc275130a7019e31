package testkit

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestLeaks(t *testing.T) {
	tok := "ak_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG_abcdef"
	got := Leaks([]string{"other-token-000000000000000000000000", tok}, map[string]string{
		"clean":   "nothing here",
		"log":     "msg=minted t=" + tok,
		"secret":  "data: " + base64.StdEncoding.EncodeToString([]byte(tok)),
		"partial": tok[:20],
	})
	want := []string{"token #1 (plain) in log", "token #1 (base64) in secret"}
	if len(got) != len(want) {
		t.Fatalf("Leaks = %v, want %v", got, want)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("missing %q in %v", w, got)
		}
	}
	for _, g := range got {
		if strings.Contains(g, tok) {
			t.Fatal("a report must never hold the token")
		}
	}
}
