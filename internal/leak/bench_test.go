package leak

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/hashindex"
	"github.com/apikey-operator/apikey-operator/internal/leak/leaktest"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// indexRevoker looks a hash up in the process's hash index, as Kube does
// before it reads and edits the key; the edits (Kubernetes writes) are
// left out, so the benchmark measures what the endpoint does per report.
type indexRevoker struct{ x *hashindex.Index }

func (r indexRevoker) Revoke(_ context.Context, s Sighting) (bool, error) {
	names, err := r.x.Claimants(s.Hash)
	return len(names) > 0, err
}

// BenchmarkLeakReport: one signed report through the GitHub handler, as
// the listener serves it (body read, signature checked against the
// cached key, replay claim, parse, hash and lookup of each token in an
// index of 10,000 keys, the feedback written), against a baseline
// handler that reads the body and answers an empty JSON array. Every
// report has a body of its own (replays are refused); bodies are signed
// before the timer starts. docs/benchmarks.md reports the figures.
func BenchmarkLeakReport(b *testing.B) {
	const keys = 10_000
	x := hashindex.New()
	h := x.Handler()
	known := make([]string, 0, keys)
	for i := range keys {
		tok, _ := token.Mint("ak")
		known = append(known, tok)
		k := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("k%d", i)}}
		k.Status.Hash = token.Hash(tok)
		h.OnAdd(k, true)
	}
	x.MarkSynced()
	reporter := leaktest.NewReporter(b)

	serve := func(b *testing.B, handler http.Handler, tokens int) {
		bodies := make([][]byte, b.N)
		sigs := make([]string, b.N)
		for i := range b.N {
			toks := make([]string, tokens)
			for j := range toks {
				toks[j] = known[(i*tokens+j)%keys]
			}
			// A distinct url per report: the same body twice is a replay.
			bodies[i] = bytes.Replace(leaktest.Report(toks...), []byte(".env"), fmt.Appendf(nil, ".env-%d", i), 1)
			sigs[i] = reporter.Sign(b, bodies[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			req := httptest.NewRequest(http.MethodPost, GitHubPath, bytes.NewReader(bodies[i]))
			req.Header.Set(GitHubKeyIDHeader, reporter.ID)
			req.Header.Set(GitHubSignatureHeader, sigs[i])
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("report %d: %d %s", i, rec.Code, rec.Body)
			}
		}
	}
	newHandler := func(b *testing.B) *GitHub {
		g, err := NewGitHub(NewOptions(), Deps{Keys: &HTTPKeySet{URL: reporter.Server.URL}, Revoker: indexRevoker{x}, Registerer: newTestRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		return g
	}

	b.Run("baseline", func(b *testing.B) {
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			writeJSON(w, http.StatusOK, []Feedback{})
		}), 1)
	})
	b.Run("signature only", func(b *testing.B) {
		pub, err := (&HTTPKeySet{URL: reporter.Server.URL}).PublicKey(context.Background(), reporter.ID)
		if err != nil {
			b.Fatal(err)
		}
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if verifySignature(pub, body, r.Header.Get(GitHubSignatureHeader)) != nil {
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
			writeJSON(w, http.StatusOK, []Feedback{})
		}), 1)
	})
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("report of %d tokens", n), func(b *testing.B) {
			serve(b, newHandler(b), n)
		})
	}
}
