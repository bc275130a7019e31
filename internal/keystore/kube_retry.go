package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keysecret"
	"github.com/apikey-operator/apikey-operator/internal/token"
)

// A create that crashed, or timed out, after writing its ApiKey leaves a
// key whose token nobody received (the dialects show a token only in the
// create answer). A retry of the same create by the same caller completes
// it with a fresh token and answers 201; anything else stays 409:
//
//   - the key records its create (keysv1.CreateRequestAnnotation): a hash
//     over the namespace, the caller's identity and the request as sent;
//     another caller, or another request, does not match;
//   - its spec is as that create wrote it (generation 1), it is not being
//     deleted, and has not expired;
//   - its token was never delivered: there is no Secret yet, or the Secret
//     still carries keysv1.UndeliveredAnnotation, which the store removes
//     right after the 201 is sent and the controller sets on a token it
//     minted in place of the one the crashed create never wrote.
//
// The completion writes the Secret (create) or replaces its undelivered
// token in one JSON patch that tests the mark and removes it, so of two
// racing retries one wins and the other gets 409. A retry on another API
// server process than the one that created the key waits until that
// process's write deadline has surely passed (settle); one on the same
// process waits for a create still running there (enter).

// fingerprint is the value of CreateRequestAnnotation for a create of
// the named key by the caller in ctx.
func fingerprint(ctx context.Context, ns string, n *NewKey) string {
	// The caller's name and UID as fields of their own: no name can pass
	// for another name with a UID.
	who, uid := "", ""
	if c := access.CallerFrom(ctx); c != nil {
		who = c.Name()
		if c.User != nil {
			uid = c.User.GetUID()
		}
	}
	req := struct {
		V                  int
		Namespace, Caller  string
		CallerUID          string
		Name, Description  string
		Role, RoleID       string
		Permissions, IPs   []string
		ExpiresAt, Enabled string
		TokenHash          string
		Attributes         map[string]string
	}{
		V: 1, Namespace: ns, Caller: who, CallerUID: uid, Name: n.Name, Description: n.Description,
		Role: n.Role, RoleID: n.RoleID, Permissions: n.Permissions, IPs: n.AllowedIPs, Attributes: n.Attributes,
	}
	if n.ExpiresAt != nil {
		req.ExpiresAt = n.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	if n.Enabled != nil {
		req.Enabled = fmt.Sprint(*n.Enabled)
	}
	if n.Token != "" {
		req.TokenHash = token.Hash(n.Token)
	}
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// instanceID names this process in CreateWriterAnnotation.
func (s *Kube) instanceID() string {
	s.instanceOnce.Do(func() { s.instance = randomHex(8) })
	return s.instance
}

// settle is how long after a key's creation a create on another process
// may still be running: that process's whole write deadline, the undo of
// a half-done create, and two seconds for clocks that disagree.
func (s *Kube) settle() time.Duration {
	wt := s.WriteTimeout
	if wt <= 0 {
		wt = 20 * time.Second
	}
	return wt + cleanupTimeout + 2*time.Second
}

// enter waits until no create of the name runs on this process, then
// marks one running; the release it returns ends it (any number of
// calls). A retry thus never overlaps the create it retries here.
func (s *Kube) enter(ctx context.Context, ns, name string) (release func(), err error) {
	id := ns + "/" + name
	for {
		s.inflightMu.Lock()
		if s.inflight == nil {
			s.inflight = map[string]chan struct{}{}
		}
		running, busy := s.inflight[id]
		if !busy {
			done := make(chan struct{})
			s.inflight[id] = done
			s.inflightMu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					s.inflightMu.Lock()
					delete(s.inflight, id)
					s.inflightMu.Unlock()
					close(done)
				})
			}, nil
		}
		s.inflightMu.Unlock()
		select {
		case <-running:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: a create of this key is still in progress", ErrUnavailable)
		}
	}
}

// retryable tells whether key is the unfinished create the request with
// fingerprint fp retries: nil if so, ErrConflict if it is another key (or
// finished), ErrUnavailable while its create may still run elsewhere.
func (s *Kube) retryable(key *keysv1.ApiKey, fp string) error {
	a := key.Annotations
	expiry, _ := key.Expiry()
	switch {
	case fp == "" || a[keysv1.CreateRequestAnnotation] != fp,
		a[keysv1.TokenWriterAnnotation] != keysv1.TokenWriterAPIServer,
		key.Generation != 1, key.DeletionTimestamp != nil, key.HashOnly(),
		!expiry.IsZero() && !expiry.After(s.now()):
		return fmt.Errorf("%w: %q", ErrConflict, key.DisplayName())
	}
	if a[keysv1.CreateWriterAnnotation] != s.instanceID() {
		if wait := key.CreationTimestamp.Add(s.settle()).Sub(s.now()); wait > 0 {
			return fmt.Errorf("%w: the first create of this key may still be in progress; try again in %d s", ErrUnavailable, int(wait.Seconds())+1)
		}
	}
	return nil
}

// complete gives an unfinished create's key a fresh token (the caller's
// chosen one, if the request chose it) and commits it at once: a crash
// after this answers 409 to the next retry, never a second token.
func (s *Kube) complete(ctx context.Context, key *keysv1.ApiKey, n *NewKey) (*Issued, error) {
	tok := n.Token
	if tok == "" {
		var err error
		if tok, err = token.Mint(s.TokenPrefix); err != nil {
			return nil, err
		}
	} else if err := s.tokenFreeFor(ctx, tok, key); err != nil {
		return nil, err
	}
	secret := keysecret.New(key, tok)
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, keysv1.TokenWriterAnnotation, keysv1.TokenWriterAPIServer)
	err := s.Client.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		err = s.replaceUndelivered(ctx, key, tok)
	}
	switch {
	case err == nil:
	case refusedPatch(err):
		// Delivered meanwhile, by another retry or the first create.
		return nil, fmt.Errorf("%w: %q", ErrConflict, key.DisplayName())
	default:
		return nil, writeError(err, key.DisplayName())
	}
	view := s.view(ctx, key)
	view.KeyPrefix = token.DisplayPrefix(tok)
	return &Issued{Key: *view, Token: tok}, nil
}

// replaceUndelivered puts tok into the key's Secret if, and only if, that
// Secret is owned by this key and its token was never delivered, and
// marks it delivered: one JSON patch, so the test and the write are one.
func (s *Kube) replaceUndelivered(ctx context.Context, key *keysv1.ApiKey, tok string) error {
	annotations := "/metadata/annotations/"
	patch := []map[string]any{
		{"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": string(key.UID)},
		{"op": "test", "path": annotations + pointerEscape(keysv1.UndeliveredAnnotation), "value": keysv1.UndeliveredValue},
		{"op": "remove", "path": annotations + pointerEscape(keysv1.UndeliveredAnnotation)},
		{"op": "add", "path": annotations + pointerEscape(keysv1.TokenWriterAnnotation), "value": keysv1.TokenWriterAPIServer},
		{"op": "add", "path": "/data/" + pointerEscape(keysv1.SecretKeyField), "value": base64.StdEncoding.EncodeToString([]byte(tok))},
	}
	return s.patchSecret(ctx, key, patch)
}

// markDelivered removes the undelivered mark from the Secret a create just
// answered with, so no retry can replace its token. It runs after the
// answer was sent, with a deadline of its own (the request's may be
// over); if it fails, the same caller repeating the same create could
// replace the token it was sent, and nobody else could.
func (s *Kube) markDelivered(key *keysv1.ApiKey) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	path := "/metadata/annotations/" + pointerEscape(keysv1.UndeliveredAnnotation)
	_ = s.patchSecret(ctx, key, []map[string]any{
		{"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": string(key.UID)},
		{"op": "test", "path": path, "value": keysv1.UndeliveredValue},
		{"op": "remove", "path": path},
	})
}

func (s *Kube) patchSecret(ctx context.Context, key *keysv1.ApiKey, ops []map[string]any) error {
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	secret := keysecret.New(key, "")
	secret.Data = nil
	return s.Client.Patch(ctx, secret, client.RawPatch(types.JSONPatchType, body))
}

// refusedPatch tells whether kube-apiserver refused a JSON patch because
// a test failed (422) or the object is gone: the state it tested for is
// not there.
func refusedPatch(err error) bool {
	var status apierrors.APIStatus
	return apierrors.IsNotFound(err) || apierrors.IsInvalid(err) ||
		errors.As(err, &status) && status.Status().Code == http.StatusUnprocessableEntity
}

// pointerEscape escapes a JSON Pointer segment (RFC 6901).
func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// tokenFreeFor is tokenFree for a token key itself may already hold (a
// retried create that chose its secret).
func (s *Kube) tokenFreeFor(ctx context.Context, tok string, key *keysv1.ApiKey) error {
	taken, err := s.hashClaimed(ctx, token.Hash(tok), client.ObjectKeyFromObject(key))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if taken {
		return invalid("secret", "cannot be used: choose another secret, or leave it out to have one generated")
	}
	return nil
}
