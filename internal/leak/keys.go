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
// shape) and caches them. An identifier it does not know makes it fetch
// again, at most once per MinRefetch, so a stream of made-up identifiers
// cannot make the operator hammer the reporter (and be rate-limited by
// it when the real report comes).
type HTTPKeySet struct {
	URL string
	// Client fetches the document; default http.DefaultClient with a 10 s timeout.
	Client *http.Client
	// MinRefetch is the least time between two fetches; default 1 minute.
	MinRefetch time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
}

type keyDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
	} `json:"public_keys"`
}

// PublicKey returns the key with the identifier, fetching the document
// when the identifier is not cached and the last fetch is old enough.
func (s *HTTPKeySet) PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	now, every := s.now(), s.MinRefetch
	if every == 0 {
		every = time.Minute
	}
	if !s.fetched.IsZero() && now.Sub(s.fetched) < every {
		return nil, ErrUnknownKey
	}
	keys, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.keys, s.fetched = keys, now
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
	var doc keyDocument
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBody)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("public keys from %s: %w", s.URL, err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for _, k := range doc.PublicKeys {
		pub, err := parsePublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("public key %q from %s: %w", k.KeyIdentifier, s.URL, err)
		}
		keys[k.KeyIdentifier] = pub
	}
	return keys, nil
}
