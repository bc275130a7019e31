package leak

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// FuzzParseFindings: any body parses or is refused without panicking,
// never yields more than MaxFindings, and the refusal never quotes it.
func FuzzParseFindings(f *testing.F) {
	for _, seed := range []string{
		`[{"token":"ak_x","type":"t","url":"https://github.com/a/b","source":"content"}]`,
		`[]`, `null`, `{}`, `[{"token":1}]`, `[{"token":"a","extra":{"deep":[1,2,3]}}]`, "[" + strings.Repeat(`{},`, 10) + `{}]`,
		`[{"token":"\u0000"}]`, `[{"token":"ak_secret"}] trailing`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := parseFindings(body)
		if err != nil {
			if len(body) > 8 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("the error quotes the body: %v", err)
			}
			return
		}
		if len(fs) > MaxFindings {
			t.Fatalf("%d findings", len(fs))
		}
	})
}

// FuzzSignedRequest: whatever headers and body arrive, the handler never
// panics, never reaches the revoker without a valid signature, and never
// echoes a token.
func FuzzSignedRequest(f *testing.F) {
	reporter := NewReporter(f)
	revoker := &fakeRevoker{known: map[string]bool{}}
	g, err := NewGitHub(NewOptions(), Deps{Keys: &HTTPKeySet{URL: reporter.Server.URL}, Revoker: revoker, Registerer: newTestRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := token.Mint("ak")
	body := []byte(`[{"token":"` + tok + `","type":"t","url":"u","source":"content"}]`)
	f.Add(body, reporter.ID, reporter.Sign(f, body))
	f.Add(body, reporter.ID, "MEQCIAfgjgz6Ou/3DXMYZBervz1TKCHFsvwMcbuJhNZse622AiAG86/cku2XdcmFWNHl2WSJi2fkE8t+auvB24eURaOd2A==")
	f.Add([]byte("[]"), "", "")
	f.Fuzz(func(t *testing.T, body []byte, id, sig string) {
		revoker.seen = nil
		req := httptest.NewRequest(http.MethodPost, GitHubPath, bytes.NewReader(body))
		req.Header.Set(GitHubKeyIDHeader, id)
		req.Header.Set(GitHubSignatureHeader, sig)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		signed := id == reporter.ID && sig != "" && verifySignature(&reporter.Private.PublicKey, body, sig) == nil
		if !signed && (rec.Code == http.StatusOK || len(revoker.seen) > 0) {
			t.Fatalf("unsigned request answered %d and reached the revoker %d times", rec.Code, len(revoker.seen))
		}
		if strings.Contains(rec.Body.String(), tok) {
			t.Fatal("the answer holds a token")
		}
	})
}

// FuzzKeyDocument: whatever the key endpoint serves, parsing never panics
// and yields only P-256 keys; a document with one bad key yields none.
func FuzzKeyDocument(f *testing.F) {
	reporter := NewReporter(f)
	resp, err := http.Get(reporter.Server.URL)
	if err != nil {
		f.Fatal(err)
	}
	var doc bytes.Buffer
	_, _ = doc.ReadFrom(resp.Body)
	resp.Body.Close()
	f.Add(doc.Bytes())
	for _, seed := range []string{`{}`, `{"public_keys":null}`, `{"public_keys":[{"key_identifier":"x","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}`,
		`{"public_keys":[{"key":""}]}`, `[]`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeyDocument(bytes.NewReader(body))
		if err != nil {
			if len(keys) > 0 {
				t.Fatal("keys and an error")
			}
			return
		}
		for id, k := range keys {
			if k == nil || k.Curve.Params().Name != "P-256" {
				t.Fatalf("key %q is not P-256", id)
			}
		}
	})
}

// FuzzVerifySignature: any signature header, valid or not, for any body,
// is checked without panicking, and only the reporter's own signature of
// that exact body verifies.
func FuzzVerifySignature(f *testing.F) {
	reporter := NewReporter(f)
	body := []byte(`[{"token":"x"}]`)
	good := reporter.Sign(f, body)
	f.Add(body, good)
	f.Add(body, "")
	f.Add(body, "MAYCAQECAQE=") // ASN.1 r=1, s=1
	f.Add([]byte{}, good)
	f.Fuzz(func(t *testing.T, b []byte, sig string) {
		err := verifySignature(&reporter.Private.PublicKey, b, sig)
		if err == nil && !bytes.Equal(b, body) {
			t.Fatalf("a signature verified for another body: %q", sig)
		}
	})
}
