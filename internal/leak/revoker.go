package leak

import (
	"context"
	"time"
)

// Sighting is one reported token, by hash: what a Revoker acts on and
// records. It never holds the token.
type Sighting struct {
	// Hash is sha256:<hex> of the token.
	Hash string
	// Reporter names who reported it (github).
	Reporter string
	// URL and Source say where it was found, as the reporter said,
	// bounded (MaxURL, MaxSource).
	URL, Source string
	At          time.Time
}

// Revoker acts on a reported token: found tells whether a key verifies
// (or did, in a grace period) with it. An error means nothing may have
// been done; the reporter should send the report again.
type Revoker interface {
	Revoke(ctx context.Context, s Sighting) (found bool, err error)
}

// Bounds of what is recorded about a sighting.
const (
	MaxURL    = 2048
	MaxSource = 64
)

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
