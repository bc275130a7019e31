package status

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/apikey-operator/apikey-operator/internal/access"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{Errorf(http.StatusMethodNotAllowed, "use GET"), http.StatusMethodNotAllowed},
		{&keystore.InvalidError{Field: "name", Reason: "bad"}, http.StatusBadRequest},
		{access.ErrUnauthenticated, http.StatusUnauthorized},
		{access.ErrInvalidCredentials, http.StatusUnauthorized},
		{access.ErrRateLimited, http.StatusTooManyRequests},
		{access.ErrIPNotAllowed, http.StatusForbidden},
		{fmt.Errorf("%w: no scope", access.ErrForbidden), http.StatusForbidden},
		{access.ErrOtherNamespace, http.StatusForbidden},
		{access.ErrEscalation, http.StatusForbidden},
		{fmt.Errorf("%w: x", keystore.ErrNotFound), http.StatusNotFound},
		{keystore.ErrNamespaceNotFound, http.StatusNotFound},
		{fmt.Errorf("%w: webhook at 10.0.0.1 timed out", access.ErrUnavailable), http.StatusServiceUnavailable},
		{keystore.ErrRoleNotFound, http.StatusNotFound},
		{keystore.ErrConflict, http.StatusConflict},
		{fmt.Errorf("%w: etcd timeout at 10.0.0.1", keystore.ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New("panic: secret internals"), http.StatusInternalServerError},
	} {
		got, msg := Of(c.err)
		if got != c.want {
			t.Errorf("Of(%v) = %d, want %d", c.err, got, c.want)
		}
		if got >= 500 && msg == c.err.Error() {
			t.Errorf("a %d must not echo the cause: %q", got, msg)
		}
	}
}
