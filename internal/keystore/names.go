package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// A display name may hold upper case and underscores; an object name may
// not. Names that are already valid object names (and label values, since
// the Secret carries the object name as a label) are used as they are, so
// kubectl users see what they expect; any other gets a cleaned-up form
// plus a hash of the display name, so two display names never share an
// object name.
var objectNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

const maxObjectNameLen = 63

// ObjectName is the metadata.name of the ApiKey for a display name.
func ObjectName(display string) string {
	if len(display) <= maxObjectNameLen && objectNameRE.MatchString(display) {
		return display
	}
	sum := sha256.Sum256([]byte(display))
	suffix := hex.EncodeToString(sum[:4])
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '-'
		}
	}, display)
	if max := maxObjectNameLen - len(suffix) - 1; len(clean) > max {
		clean = clean[:max]
	}
	clean = strings.Trim(clean, "-")
	if clean == "" {
		return "key-" + suffix
	}
	return clean + "-" + suffix
}

// IDOf is the stable 24-hex-digit ID of an object, from its UID.
func IDOf(uid types.UID) string {
	s := strings.ReplaceAll(string(uid), "-", "")
	if len(s) > 24 {
		s = s[:24]
	}
	return s
}
