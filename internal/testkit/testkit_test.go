package testkit

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestLeaks(t *testing.T) {
	tok := "ak_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG_abcdef"
	other := "other-token-000000000000000000000000"
	// A token inside a larger base64 blob: the Secret's data as a whole
	// object, a body encoded in a log. At each byte offset the token's
	// encoding differs, and none is the token's own encoding.
	blob := func(pad int, enc *base64.Encoding) string {
		return enc.EncodeToString([]byte(strings.Repeat("x", pad) + "{token: " + tok + "}"))
	}
	got := Leaks([]string{other, tok}, map[string]string{
		"clean":         "nothing here",
		"log":           "msg=minted t=" + tok + " and " + other[:10],
		"secret":        "data: " + base64.StdEncoding.EncodeToString([]byte(tok)),
		"partial":       tok[:20],
		"blob0":         blob(0, base64.StdEncoding),
		"blob1":         blob(1, base64.StdEncoding),
		"blob2url":      blob(2, base64.URLEncoding),
		"unpadded":      base64.RawStdEncoding.EncodeToString([]byte("ab" + tok)),
		"hex":           "%x: " + hex.EncodeToString([]byte(tok)),
		"both in one":   tok + " " + other,
		"other partial": other[:30],
	})
	want := []string{
		"token #1 (plain) in log",
		"token #1 (base64, offset 0) in secret",
		"token #1 (base64", // blob0, blob1, blob2url, unpadded: some alignment
		"token #1 (hex) in hex",
		"token #1 (plain) in both in one",
		"token #0 (plain) in both in one",
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in\n%s", w, joined)
		}
	}
	for _, place := range []string{"blob0", "blob1", "blob2url", "unpadded"} {
		if !strings.Contains(joined, "in "+place+" at") {
			t.Errorf("the token inside %s was not found:\n%s", place, joined)
		}
	}
	for _, place := range []string{"clean", "partial", "other partial"} {
		if strings.Contains(joined, "in "+place+" at") {
			t.Errorf("false hit in %s:\n%s", place, joined)
		}
	}
	if len(got) != 9 {
		t.Errorf("want one report per token and place (9), got %d:\n%s", len(got), joined)
	}
	for _, g := range got {
		for _, n := range append(Needles(tok), Needles(other)...) {
			if strings.Contains(g, n.Text) {
				t.Fatalf("a report must never hold a token in any form: %s", g)
			}
		}
	}
}
