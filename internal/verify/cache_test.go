package verify

import (
	"testing"
	"time"
)

// TestCacheHint: an allowed forward-auth answer may be reused by a
// gateway cache only for --verify-cache-max-age (0 by default) and only
// for this client; a refusal never.
func TestCacheHint(t *testing.T) {
	for _, c := range []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "private, max-age=0"},
		{30 * time.Second, "private, max-age=30"},
	} {
		f := newFixture(t)
		f.srv.opts.CacheMaxAge = c.maxAge
		tok := mint(t)
		f.ix.SetKey(apiKey("ns", "k", tok))
		w := f.auth("192.0.2.1:5555", "/v1/auth?namespace=ns", map[string]string{"Authorization": "Bearer " + tok})
		if w.Code != 200 || w.Header().Get("Cache-Control") != c.want {
			t.Errorf("max-age %s: %d with Cache-Control %q, want 200 with %q", c.maxAge, w.Code, w.Header().Get("Cache-Control"), c.want)
		}
		for _, target := range []string{"/v1/auth?namespace=other", "/v1/auth"} {
			w = f.auth("192.0.2.1:5555", target, map[string]string{"Authorization": "Bearer " + tok})
			if w.Code == 200 || w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d with Cache-Control %q, want a refusal with no-store", target, w.Code, w.Header().Get("Cache-Control"))
			}
		}
	}
	o := NewOptions()
	o.CacheMaxAge = 2 * time.Hour
	if err := o.Validate(); err == nil {
		t.Error("--verify-cache-max-age 2h was accepted")
	}
}
