package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

func runHash(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	c := New()
	var out, errOut bytes.Buffer
	c.SetIn(strings.NewReader(stdin))
	c.SetOut(&out)
	c.SetErr(&errOut)
	c.SetArgs(append([]string{"hash"}, args...))
	err := c.Execute()
	return out.String() + errOut.String(), err
}

func TestHashReadsTheTokenFromStdin(t *testing.T) {
	tok, err := token.Mint("ak")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{tok, tok + "\n", tok + "\r\n"} {
		out, err := runHash(t, in)
		if err != nil || out != token.Hash(tok)+"\n" {
			t.Fatalf("hash of %q: %q, %v; want %s", in, out, err, token.Hash(tok))
		}
	}
}

func TestHashRefusesUnusableTokensWithoutEchoingThem(t *testing.T) {
	tok, _ := token.Mint("ak")
	typo := tok[:len(tok)-1] + "0" // a checksum digit changed: a typo
	if strings.HasSuffix(tok, "0") {
		typo = tok[:len(tok)-1] + "1"
	}
	for name, in := range map[string]string{
		"empty":     "",
		"short":     "short-secret",
		"space":     "a secret with spaces that is long enough to pass",
		"checksum":  typo,
		"too long":  strings.Repeat("x", token.MaxLen+1),
		"two lines": "\n" + tok,
	} {
		out, err := runHash(t, in)
		if err == nil {
			t.Errorf("%s: accepted, printed %q", name, out)
			continue
		}
		if len(in) >= 8 && (strings.Contains(out, strings.TrimSpace(in)) || strings.Contains(err.Error(), strings.TrimSpace(in))) {
			t.Errorf("%s: the refusal shows the token: %v", name, err)
		}
	}
}

func TestHashMintWritesANewFileAndPrintsItsHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "billing.token")
	out, err := runHash(t, "", "--mint", path, "--prefix", "acme")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(data))
	if !strings.HasPrefix(tok, "acme_") || token.Check(tok) != nil {
		t.Fatalf("minted %q is not a checksummed acme token", tok)
	}
	if out != token.Hash(tok)+"\n" || strings.Contains(out, tok) {
		t.Fatalf("printed %q, want only %s", out, token.Hash(tok))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := runHash(t, "", "--mint", path); err == nil {
		t.Fatal("--mint overwrote an existing file")
	}
	if again, _ := os.ReadFile(path); string(again) != string(data) {
		t.Fatal("the existing token file changed")
	}
}
