package hub

import (
	"net/http"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// recordingLogger appends the errors it is given.
func recordingLogger(errs *[]error) logr.Logger {
	return logr.New(&errSink{LogSink: funcr.New(func(string, string) {}, funcr.Options{}).GetSink(), errs: errs})
}

type errSink struct {
	logr.LogSink
	errs *[]error
}

func (s *errSink) Error(err error, msg string, kv ...any) { *s.errs = append(*s.errs, err) }

// withLogger gives every request's context the logger, as the API
// server's dialect middleware does.
func withLogger(h http.Handler, log logr.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(logr.NewContext(r.Context(), log)))
	})
}
