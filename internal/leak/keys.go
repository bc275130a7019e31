package leak

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// GitHubKeysURL is where GitHub publishes its secret scanning signing keys.
const GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// maxKeysBody bounds the public key document.
const maxKeysBody = 1 << 20

// HTTPKeySet fetches a reporter's public keys from its key endpoint
// ({"public_keys":[{"key_identifier","key","is_current"}]}, GitHub's
// shape) and caches them:
//   - for MaxAge: after it, the next report fetches the document again,
//     so a key the reporter withdrew stops being trusted;
//   - an identifier it does not know makes it fetch again, and so does a
//     failed fetch, but at most once per MinRefetch, so a stream of
//     made-up identifiers cannot make the operator hammer the reporter
//     (and be rate-limited by it when the real report comes).
//
// When a fetch fails, the report gets 503 and the reporter retries.
type HTTPKeySet struct {
	URL string
	// Client fetches the document; default http.DefaultClient with a 10 s timeout.
	Client *http.Client
	// MaxAge is how long a fetched document is trusted; default 1 hour.
	MaxAge time.Duration
	// MinRefetch is the least time between two fetches; default 1 minute.
	MinRefetch time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	fetched   time.Time // of the cached document
	attempted time.Time // the last fetch, good or not
	lastErr   error     // of the last fetch
}

// Defaults of HTTPKeySet's cache.
const (
	DefaultKeysMaxAge     = time.Hour
	DefaultKeysMinRefetch = time.Minute
)

type keyDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
	} `json:"public_keys"`
}

// PublicKey returns the key with the identifier, fetching the document
// when the identifier is not cached or the cache is older than MaxAge,
// and the last fetch is older than MinRefetch.
func (s *HTTPKeySet) PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	maxAge, every := s.MaxAge, s.MinRefetch
	if maxAge <= 0 {
		maxAge = DefaultKeysMaxAge
	}
	if every <= 0 {
		every = DefaultKeysMinRefetch
	}
	k, known := s.keys[id]
	if known && now.Sub(s.fetched) < maxAge {
		return k, nil
	}
	if !s.attempted.IsZero() && now.Sub(s.attempted) < every {
		switch {
		case s.lastErr != nil:
			return nil, s.lastErr
		case known:
			return k, nil
		}
		return nil, ErrUnknownKey
	}
	s.attempted = now
	keys, err := s.fetch(ctx)
	if err != nil {
		s.lastErr = err
		return nil, err
	}
	s.keys, s.fetched, s.lastErr = keys, now, nil
	if k, ok := keys[id]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

func (s *HTTPKeySet) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *HTTPKeySet) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("public keys from %s: %w", s.URL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch public keys from %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch public keys from %s: %s", s.URL, resp.Status)
	}
	keys, err := parseKeyDocument(io.LimitReader(resp.Body, maxKeysBody))
	if err != nil {
		return nil, fmt.Errorf("public keys from %s: %w", s.URL, err)
	}
	return keys, nil
}

// parseKeyDocument reads the reporter's key document: every key must be
// an ECDSA P-256 PEM public key, or the whole document is refused.
func parseKeyDocument(r io.Reader) (map[string]*ecdsa.PublicKey, error) {
	var doc keyDocument
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, err
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, k := range doc.PublicKeys {
		pub, err := parsePublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("public key %q: %w", bound(k.KeyIdentifier, maxKeyID), err)
		}
		keys[k.KeyIdentifier] = pub
	}
	return keys, nil
}
