package leak

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/apikey-operator/apikey-operator/internal/token"
)

// The GitHub secret scanning partner program's request headers.
const (
	GitHubKeyIDHeader     = "Github-Public-Key-Identifier"
	GitHubSignatureHeader = "Github-Public-Key-Signature"
)

// MaxFindings bounds the tokens of one report.
const MaxFindings = 1000

// Finding is one match as GitHub sends it.
type Finding struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Feedback is GitHub's answer format for one token: by hash, so the
// answer never carries a token back.
type Feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// The two labels GitHub accepts.
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// GitHub serves GitHub's secret scanning partner endpoint.
type GitHub struct {
	keys    KeySet
	revoker Revoker
	maxBody int64
	replays *replays
	metrics *metrics
	log     logr.Logger
	now     func() time.Time
}

// reporterGitHub names GitHub in status, events and metrics.
const reporterGitHub = "github"

// result is how a request ended, the metric's label.
type result string

const (
	resultAccepted    result = "accepted"
	resultMethod      result = "method_not_allowed"
	resultTooLarge    result = "too_large"
	resultUnsigned    result = "unsigned"
	resultBadSig      result = "bad_signature"
	resultKeysDown    result = "keys_unavailable"
	resultReplayed    result = "replayed"
	resultMalformed   result = "malformed"
	resultRevokeError result = "revoke_failed"
)

// parseFindings reads a report body: a JSON array of findings, at most
// MaxFindings.
func parseFindings(body []byte) ([]Finding, error) {
	var fs []Finding
	if err := json.Unmarshal(body, &fs); err != nil {
		// The JSON error quotes no input beyond a type name or offset,
		// but say only what is wrong in general: the body holds tokens.
		return nil, errors.New("the body must be a JSON array of {token, type, url, source} objects")
	}
	if fs == nil {
		return nil, errors.New("the body must be a JSON array, not null")
	}
	if len(fs) > MaxFindings {
		return nil, fmt.Errorf("at most %d tokens per report", MaxFindings)
	}
	return fs, nil
}

func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, status, msg, answer := g.serve(r.Context(), w, r)
	g.metrics.requests.WithLabelValues(reporterGitHub, string(res)).Inc()
	if res != resultAccepted {
		g.log.V(1).Info("leak report refused", "reporter", reporterGitHub, "result", res, "remote", r.RemoteAddr)
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		writeJSON(w, status, map[string]string{"message": msg})
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

func (g *GitHub) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) (result, int, string, []Feedback) {
	if r.Method != http.MethodPost {
		return resultMethod, http.StatusMethodNotAllowed, "use POST", nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return resultTooLarge, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", g.maxBody), nil
		}
		return resultMalformed, http.StatusBadRequest, "could not read the body", nil
	}
	id, sig := r.Header.Get(GitHubKeyIDHeader), r.Header.Get(GitHubSignatureHeader)
	if id == "" || sig == "" {
		return resultUnsigned, http.StatusUnauthorized, "the request must be signed (" + GitHubKeyIDHeader + ", " + GitHubSignatureHeader + ")", nil
	}
	// One answer for every bad signature: an unknown key identifier, a
	// signature that does not parse or does not match are all "not
	// signed by the reporter".
	const badSig = "the signature does not verify with the reporter's published key"
	if len(id) > maxKeyID {
		return resultBadSig, http.StatusUnauthorized, badSig, nil
	}
	pub, err := g.keys.PublicKey(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return resultBadSig, http.StatusUnauthorized, badSig, nil
	case err != nil:
		g.log.Error(err, "leak report: cannot get the reporter's public keys; the reporter will retry")
		return resultKeysDown, http.StatusServiceUnavailable, "the reporter's public keys cannot be fetched now; retry later", nil
	}
	if verifySignature(pub, body, sig) != nil {
		return resultBadSig, http.StatusUnauthorized, badSig, nil
	}
	digest := sha256.Sum256(body)
	if !g.replays.claim(digest, g.now()) {
		return resultReplayed, http.StatusConflict, "this report was already received", nil
	}
	findings, err := parseFindings(body)
	if err != nil {
		return resultMalformed, http.StatusBadRequest, err.Error(), nil
	}
	answer, err := g.act(ctx, findings)
	if err != nil {
		// Let the reporter's retry through: what was done is idempotent.
		g.replays.release(digest)
		g.log.Error(err, "leak report: acting on a reported key failed; the reporter will retry")
		return resultRevokeError, http.StatusServiceUnavailable, "the report could not be acted on; retry later", nil
	}
	return resultAccepted, http.StatusOK, "", answer
}

// act looks each token up and lets the revoker react; the answer labels
// each by hash.
func (g *GitHub) act(ctx context.Context, findings []Finding) ([]Feedback, error) {
	answer := make([]Feedback, 0, len(findings))
	now := g.now()
	for _, f := range findings {
		hash := token.Hash(f.Token)
		label := FalsePositive
		// A string that is no token of ours (wrong shape, bad checksum,
		// too short) is not looked up at all.
		if token.Validate(f.Token) == nil {
			found, err := g.revoker.Revoke(ctx, Sighting{
				Hash: hash, Reporter: reporterGitHub,
				URL: bound(f.URL, MaxURL), Source: bound(f.Source, MaxSource), At: now,
			})
			if err != nil {
				return nil, err
			}
			if found {
				label = TruePositive
			}
		}
		g.metrics.tokens.WithLabelValues(reporterGitHub, label).Inc()
		answer = append(answer, Feedback{TokenHash: hash[len(token.HashPrefix):], TokenType: bound(f.Type, 128), Label: label})
	}
	return answer, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
