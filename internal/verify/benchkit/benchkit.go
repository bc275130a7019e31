// Package benchkit builds what make bench's harnesses (verifybench for
// forward-auth, grpcbench for gRPC ext_authz) serve: an index of filler
// keys with one real key among them. It is for benchmarks, not the
// operator.
package benchkit

import (
	"crypto/rand"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Index returns an index of keys ApiKeys in namespace "bench": keys-1
// whose tokens nobody holds, and "bench", with permission invoices:read,
// whose token it writes to tokenFile (mode 0600). "bench" has a rate
// limit it never reaches (a million a second), so every verification
// takes from its limit: in this process, or in Redis when lim is
// limits.Shared; nil is limits.Local.
func Index(keys int, tokenFile string, lim limits.Provider) (*verify.Index, error) {
	if lim == nil {
		lim = limits.Local{}
	}
	ix := verify.NewIndexWithLimits(lim)
	for i := range keys - 1 {
		ix.SetKey(filler(i))
	}
	tok, err := token.Mint("")
	if err != nil {
		return nil, err
	}
	ix.SetKey(&keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "bench"},
		Spec: keysv1.ApiKeySpec{Permissions: []keysv1.Permission{"invoices:read"},
			RateLimit: &keysv1.RateLimitSpec{RequestsPerSecond: 1_000_000, Burst: 1_000_000}},
		Status: keysv1.ApiKeyStatus{Hash: token.Hash(tok), KeyPrefix: token.DisplayPrefix(tok), ExpiresAt: &metav1.Time{Time: time.Now().Add(24 * time.Hour)}},
	})
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		return nil, fmt.Errorf("write the token file: %w", err)
	}
	return ix, nil
}

// filler is a key whose token nobody holds.
func filler(i int) *keysv1.ApiKey {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("filler-%d", i)},
		Status:     keysv1.ApiKeyStatus{Hash: token.FormatSum(b)},
	}
}
