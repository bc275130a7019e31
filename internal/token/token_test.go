package token

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func TestMintShapeAndChecksum(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok, err := Mint("")
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("Mint returned the same token twice")
		}
		seen[tok] = true
		if got, want := len(tok), len("ak_")+RandomDigits+1+ChecksumDigits; got != want {
			t.Fatalf("len = %d, want %d", got, want)
		}
		if !strings.HasPrefix(tok, "ak_") {
			t.Fatalf("token does not start with the default prefix")
		}
		if err := Check(tok); err != nil {
			t.Fatalf("Check(minted) = %v", err)
		}
		if err := Validate(tok); err != nil {
			t.Fatalf("Validate(minted) = %v", err)
		}
	}
}

func TestMintPrefix(t *testing.T) {
	tok, err := Mint("billing2")
	if err != nil || !strings.HasPrefix(tok, "billing2_") || Check(tok) != nil {
		t.Fatalf("Mint(billing2) = %q, %v", tok, err)
	}
	for _, bad := range []string{"Ak", "a_b", "1ak", "a-b", strings.Repeat("a", 17)} {
		if _, err := Mint(bad); !errors.Is(err, ErrBadPrefix) {
			t.Errorf("Mint(%q) err = %v, want ErrBadPrefix", bad, err)
		}
	}
}

func TestCheckRejectsEveryTypo(t *testing.T) {
	tok, _ := Mint("ak")
	// Changing any single base62 character must fail the check (CRC32
	// detects every single-character error).
	for i := 3; i < len(tok); i++ {
		if tok[i] == '_' {
			continue
		}
		b := []byte(tok)
		if b[i] == 'x' {
			b[i] = 'y'
		} else {
			b[i] = 'x'
		}
		if err := Check(string(b)); !errors.Is(err, ErrChecksum) {
			t.Fatalf("typo at %d: Check = %v, want ErrChecksum", i, err)
		}
	}
}

func TestCheckMalformed(t *testing.T) {
	tok, _ := Mint("ak")
	for name, s := range map[string]string{
		"empty":          "",
		"truncated":      tok[:len(tok)-1],
		"extra":          tok + "a",
		"no prefix":      tok[2:],
		"upper prefix":   "AK" + tok[2:],
		"dash in random": tok[:10] + "-" + tok[11:],
		"space":          tok[:10] + " " + tok[11:],
	} {
		if err := Check(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check = %v, want ErrMalformed", name, err)
		}
	}
}

func TestWellFormed(t *testing.T) {
	cases := map[string]bool{
		strings.Repeat("a", 31):          false,
		strings.Repeat("a", 32):          true,
		strings.Repeat("a", 1024):        true,
		strings.Repeat("a", 1025):        false,
		strings.Repeat("a", 31) + " ":    false,
		strings.Repeat("a", 31) + "é":    false,
		strings.Repeat("a", 31) + "\x00": false,
	}
	for s, ok := range cases {
		if err := WellFormed(s); (err == nil) != ok {
			t.Errorf("WellFormed(len %d) = %v, want ok=%v", len(s), err, ok)
		}
	}
}

func TestHash(t *testing.T) {
	tok, _ := Mint("ak")
	want := sha256.Sum256([]byte(tok))
	if got := Hash(tok); got != "sha256:"+hex.EncodeToString(want[:]) {
		t.Fatalf("Hash = %s", got)
	}
	long := strings.Repeat("z", 500)
	if Sum(long) != sha256.Sum256([]byte(long)) {
		t.Fatalf("Sum of a long token differs from sha256")
	}
	sum, err := ParseHash(Hash(tok))
	if err != nil || sum != want {
		t.Fatalf("ParseHash round trip: %v", err)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("g", 64)} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

func TestDisplayPrefix(t *testing.T) {
	tok, _ := Mint("ak")
	if got := DisplayPrefix(tok); got != tok[:9] || len(got) != 9 {
		t.Fatalf("DisplayPrefix = %q", got)
	}
	if got := DisplayPrefix("customsecretvalue-0123456789abcdefgh"); got != "custom" {
		t.Fatalf("DisplayPrefix(custom) = %q", got)
	}
}

func TestErrorsNeverCarryTheToken(t *testing.T) {
	tok, _ := Mint("ak")
	bad := tok[:len(tok)-1] + "0"
	for _, err := range []error{Check(bad), Validate(bad), WellFormed(bad[:20]), Check(bad[:30])} {
		if err != nil && (strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), bad[:20])) {
			t.Fatalf("error carries the token: %v", err)
		}
	}
}

func TestVerifyPathAllocatesNothing(t *testing.T) {
	tok, _ := Mint("ak")
	spaced, typo := strings.Repeat("x", 40)+" ", tok[:len(tok)-1]+"!"
	allocs := testing.AllocsPerRun(100, func() {
		if Validate(tok) != nil {
			t.Fatal("invalid")
		}
		_ = Sum(tok)
		_ = DisplayPrefix(tok)
		// Refusals allocate nothing either: a flood of bad keys costs no GC.
		_ = Validate("short")
		_ = Validate(spaced)
		_ = Validate(typo)
	})
	if allocs != 0 {
		t.Fatalf("verify path allocates %v times", allocs)
	}
}

func FuzzValidate(f *testing.F) {
	tok, _ := Mint("ak")
	f.Add(tok)
	f.Add(tok[:len(tok)-1] + "x")
	f.Add("ak__")
	f.Add(strings.Repeat("_", 51))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := Validate(s)
		if Shape(s) {
			// A minted shape passes only with the right checksum.
			body := s[:len(s)-ChecksumDigits-1]
			if (err == nil) != (s[len(body)+1:] == checksumOf(body)) {
				t.Fatalf("Validate = %v disagrees with the checksum", err)
			}
		}
		if err != nil && len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error carries the input")
		}
		_ = DisplayPrefix(s)
		if p := DisplayPrefix(s); len(p) > 6+1+MaxPrefixLen {
			t.Fatalf("display prefix too long: %d", len(p))
		}
	})
}

func checksumOf(body string) string {
	return base62Uint(uint64(crc32.ChecksumIEEE([]byte(body))))
}

func base62Uint(v uint64) string {
	out := make([]byte, ChecksumDigits)
	for i := ChecksumDigits - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out)
}

func BenchmarkValidateAndSum(b *testing.B) {
	tok, _ := Mint("ak")
	b.ReportAllocs()
	for b.Loop() {
		if Validate(tok) != nil {
			b.Fatal("invalid")
		}
		_ = Sum(tok)
	}
}

func TestGuessable(t *testing.T) {
	for _, tc := range []struct {
		secret string
		want   bool
	}{
		{strings.Repeat("a", 40), true},
		{strings.Repeat("ab", 20), true},
		{strings.Repeat("password1", 4), true},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", true},
		{"0123456789012345678901234567890123", true},
		{"zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQ", true},
		{"11111111111111111111111111111112", true},
		{"3f9c0a7be21d4c6f8a5e9b0d7c2e1f4a", false}, // 32 random hex digits
		{"q8Zr2LxV0pNfTb7YwKc3HsJm9GdEu5Ra+1/=", false},
		{"supplied-secret-value-0123456789-abcdef", false},
		{"my-own-secret-of-more-than-32-characters", false},
	} {
		if got := Guessable(tc.secret); got != tc.want {
			t.Errorf("Guessable(%q) = %v, want %v", tc.secret, got, tc.want)
		}
	}
	for range 200 {
		tok, err := Mint("ak")
		if err != nil {
			t.Fatal(err)
		}
		if Guessable(tok) {
			t.Fatalf("a minted token counts as guessable: %s", tok[:8])
		}
	}
}
