package httpjson

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Segments splits an escaped URL path ("/a/b%2Fc") into unescaped
// segments (["a", "b/c"]). Splitting before unescaping keeps an escaped
// '/' inside its segment, where name validation then refuses it.
func Segments(escapedPath string) ([]string, error) {
	parts := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	for i, p := range parts {
		s, err := url.PathUnescape(p)
		if err != nil {
			return nil, err
		}
		parts[i] = s
	}
	return parts, nil
}

// SetRetryAfter sets Retry-After in whole seconds, at least 1.
func SetRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}
