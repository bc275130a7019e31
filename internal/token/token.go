// Package token mints, checks and hashes API key tokens. It is pure: no
// Kubernetes imports, no I/O but crypto/rand, and the checks on the verify
// path allocate nothing.
//
// A token is <prefix>_<random>_<checksum>: prefix default "ak"; random is
// 256 bits from crypto/rand in 43 base62 digits; checksum is the CRC32
// (IEEE) of "<prefix>_<random>" in 6 base62 digits. This is the shape
// GitHub uses, so secret scanners can find leaked tokens and a verifier can
// reject a mistyped token without a lookup.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/big"
)

const (
	// DefaultPrefix starts every token the operator mints unless told otherwise.
	DefaultPrefix = "ak"

	// RandomDigits is the length of the random part: 256 bits in base62.
	RandomDigits = 43
	// ChecksumDigits is the length of the checksum part: 32 bits in base62.
	ChecksumDigits = 6
	// MaxPrefixLen bounds the prefix.
	MaxPrefixLen = 16

	// MinLen and MaxLen bound any token the operator accepts, including
	// one a user supplied instead of a minted one.
	MinLen = 32
	MaxLen = 1024

	// HashPrefix starts every stored hash.
	HashPrefix = "sha256:"
	// displayRandomDigits of the random part are shown in a key's prefix.
	displayRandomDigits = 6
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors a check returns. None of them carries the token, and all are
// fixed values, so refusing a token allocates nothing.
var (
	ErrMalformed = errors.New("malformed API key")
	ErrLength    = fmt.Errorf("%w: a key has %d to %d characters", ErrMalformed, MinLen, MaxLen)
	ErrCharacter = fmt.Errorf("%w: a key has only printable ASCII characters and no spaces", ErrMalformed)
	ErrChecksum  = errors.New("API key checksum does not match: the key was mistyped or truncated")
	ErrBadPrefix = fmt.Errorf("token prefix must be 1-%d lower-case letters and digits, starting with a letter", MaxPrefixLen)
)

var max256 = new(big.Int).Lsh(big.NewInt(1), 256)

// Mint returns a new token with the given prefix ("" means DefaultPrefix).
func Mint(prefix string) (string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !validPrefix(prefix) {
		return "", ErrBadPrefix
	}
	n, err := rand.Int(rand.Reader, max256)
	if err != nil {
		return "", fmt.Errorf("read random bits: %w", err)
	}
	random := base62(n, RandomDigits)
	body := prefix + "_" + random
	return body + "_" + base62(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body)))), ChecksumDigits), nil
}

// base62 writes n in exactly width base62 digits, zero-padded on the left.
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	n = new(big.Int).Set(n)
	base, rem := big.NewInt(62), new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.QuoRem(n, base, rem)
		out[i] = alphabet[rem.Int64()]
	}
	return string(out)
}

// Shape tells whether s has the minted shape, <prefix>_<43>_<6>. It does
// not check the checksum. It allocates nothing.
func Shape(s string) bool {
	_, ok := split(s)
	return ok
}

// split returns the index of the underscore before the random part.
func split(s string) (int, bool) {
	n := len(s)
	sumStart := n - ChecksumDigits
	randStart := sumStart - 1 - RandomDigits
	if randStart < 2 || s[sumStart-1] != '_' || s[randStart-1] != '_' {
		return 0, false
	}
	if !validPrefix(s[:randStart-1]) {
		return 0, false
	}
	for i := randStart; i < n; i++ {
		if i != sumStart-1 && !isBase62(s[i]) {
			return 0, false
		}
	}
	return randStart - 1, true
}

// Check verifies a minted token's shape and checksum: ErrMalformed when it
// has not the shape, ErrChecksum when the checksum does not match. It
// allocates nothing.
func Check(s string) error {
	if _, ok := split(s); !ok {
		return ErrMalformed
	}
	body := s[:len(s)-ChecksumDigits-1]
	want := crcString(body)
	var got uint64
	for i := len(s) - ChecksumDigits; i < len(s); i++ {
		got = got*62 + uint64(digit(s[i]))
	}
	if got != uint64(want) {
		return ErrChecksum
	}
	return nil
}

// WellFormed tells whether s may serve as a key at all, minted or supplied:
// MinLen to MaxLen printable ASCII characters without spaces. A minted
// token must also pass Check.
func WellFormed(s string) error {
	if len(s) < MinLen || len(s) > MaxLen {
		return ErrLength
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return ErrCharacter
		}
	}
	return nil
}

// Validate is the check a verifier makes before any lookup: a token of the
// minted shape must carry a good checksum; any other must be well formed.
func Validate(s string) error {
	if Shape(s) {
		return Check(s)
	}
	return WellFormed(s)
}

// Sum is the SHA-256 of the token, the key of the verify index. It
// allocates nothing for tokens of up to 128 bytes.
func Sum(s string) [sha256.Size]byte {
	var buf [128]byte
	if len(s) <= len(buf) {
		n := copy(buf[:], s)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(s))
}

// Hash is the stored form of the token's hash: "sha256:<hex>".
func Hash(s string) string {
	sum := Sum(s)
	return FormatSum(sum)
}

// FormatSum renders a SHA-256 sum the way Hash does.
func FormatSum(sum [sha256.Size]byte) string {
	return HashPrefix + hex.EncodeToString(sum[:])
}

// ParseHash reads a stored hash back into a sum.
func ParseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if len(h) != len(HashPrefix)+2*sha256.Size || h[:len(HashPrefix)] != HashPrefix {
		return sum, fmt.Errorf("hash must be %s followed by 64 lower-case hex digits", HashPrefix)
	}
	// Lower case only: hashes are compared as strings too (one token,
	// one key), so a hash has exactly one spelling.
	for i := len(HashPrefix); i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return sum, fmt.Errorf("hash must be %s followed by 64 lower-case hex digits", HashPrefix)
		}
	}
	if _, err := hex.Decode(sum[:], []byte(h[len(HashPrefix):])); err != nil {
		return sum, fmt.Errorf("hash must be %s followed by 64 lower-case hex digits", HashPrefix)
	}
	return sum, nil
}

// DisplayPrefix is the non-secret start of a token that people see to
// recognise a key: the prefix and the first six random digits of a minted
// token ("ak_3xAmPl"), or the first six characters of any other.
func DisplayPrefix(s string) string {
	if i, ok := split(s); ok {
		return s[:i+1+displayRandomDigits]
	}
	if len(s) > displayRandomDigits {
		return s[:displayRandomDigits]
	}
	return ""
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if !(p[i] >= 'a' && p[i] <= 'z' || p[i] >= '0' && p[i] <= '9') {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func digit(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 10
	default:
		return c - 'a' + 36
	}
}

// crcString is crc32.ChecksumIEEE over a string without converting it to a
// byte slice, which would allocate on the verify path.
func crcString(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// MinGuessBits is the least entropy a caller-chosen secret must show,
// estimated as its length times the Shannon entropy of its characters.
// A random 32-character hex string shows about 118 bits; "aaaa…" none.
const MinGuessBits = 96

// Guessable tells a caller-chosen secret that is easy to guess whatever
// its length: less than MinGuessBits of estimated entropy, or a short unit
// repeated ("password1password1…"), or mostly a run of consecutive
// characters ("abcdefgh…", "98765432…"). It is a floor, not a strength
// meter: minted tokens carry 256 bits.
func Guessable(s string) bool {
	if len(s) == 0 {
		return true
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	bits := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			bits -= float64(c) * math.Log2(p)
		}
	}
	if bits < MinGuessBits {
		return true
	}
	for period := 1; period <= len(s)/2; period++ {
		if s[period:] == s[:len(s)-period] {
			return true
		}
	}
	steps := 0
	for i := 1; i < len(s); i++ {
		if d := int(s[i]) - int(s[i-1]); d == 1 || d == -1 {
			steps++
		}
	}
	return steps*2 > len(s)
}
