package extauthz

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/pflag"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// Body shapes of a denied answer.
const (
	BodyText  = "text"  // the verdict's name and a newline, as forward-auth answers
	BodyJSON  = "json"  // {"code": "<verdict>", "status": <HTTP status>}
	BodyEmpty = "empty" // no body
)

// Options are the gRPC ext_authz server's settings, bound to flags.
type Options struct {
	// BindAddress of the gRPC listener; "0" turns it off.
	BindAddress string
	// KeyHeaders are the request headers the key is read from, in order;
	// Authorization carries it after "Bearer ".
	KeyHeaders []string
	// DeniedBody is the shape of a denied answer's body: text, json or
	// empty.
	DeniedBody string
	// Connections bounds the listener's connections (trusted proxies
	// exempt per address) and closes idle ones; the operator's one
	// connlimit.Options. nil: no limits, the default idle timeout.
	Connections *connlimit.Options
}

// NewOptions returns the defaults: port 9191 (the port Envoy's and
// Istio's ext_authz examples use) and forward-auth's key headers.
func NewOptions() *Options {
	return &Options{
		BindAddress: ":9191",
		KeyHeaders:  append([]string(nil), verify.DefaultKeyHeaders...),
		DeniedBody:  BodyText,
	}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.BindAddress, "ext-authz-bind-address", o.BindAddress, "Address of the gRPC ext_authz server (envoy.service.auth.v3.Authorization/Check, with gRPC health checking and reflection) for Envoy, Envoy Gateway and Istio; \"0\" turns it off.")
	fs.StringSliceVar(&o.KeyHeaders, "ext-authz-key-headers", o.KeyHeaders, "Request headers the gRPC ext_authz server reads the key from, in order (comma-separated); Authorization carries it after \"Bearer \". The gateway is told to remove them before the request goes upstream.")
	fs.StringVar(&o.DeniedBody, "ext-authz-denied-body", o.DeniedBody, "Body of a denied gRPC ext_authz answer: text (the verdict, e.g. \"NotFound\"), json ({\"code\": \"NotFound\", \"status\": 401}) or empty.")
}

// Bounds on the key header list: each name is a header Envoy sends.
const (
	maxKeyHeaders    = 8
	maxHeaderNameLen = 64
)

// Validate reports options that cannot work, saying how to fix them.
func (o *Options) Validate() error {
	var errs []error
	switch o.DeniedBody {
	case BodyText, BodyJSON, BodyEmpty:
	default:
		errs = append(errs, fmt.Errorf("--ext-authz-denied-body must be text, json or empty, not %q", o.DeniedBody))
	}
	if len(o.KeyHeaders) == 0 || len(o.KeyHeaders) > maxKeyHeaders {
		errs = append(errs, fmt.Errorf("--ext-authz-key-headers names 1 to %d headers, e.g. authorization,x-api-key", maxKeyHeaders))
	}
	for _, h := range o.KeyHeaders {
		if !validHeaderName(h) {
			errs = append(errs, fmt.Errorf("--ext-authz-key-headers: %q is not a header name (1-%d letters, digits and -)", h, maxHeaderNameLen))
		}
	}
	return errors.Join(errs...)
}

func validHeaderName(h string) bool {
	if h == "" || len(h) > maxHeaderNameLen {
		return false
	}
	for _, c := range h {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// keyHeaders are the names as Envoy sends them in a CheckRequest: lower
// case (HTTP/2 and Envoy's header map).
func (o *Options) keyHeaders() []string {
	out := make([]string, len(o.KeyHeaders))
	for i, h := range o.KeyHeaders {
		out[i] = strings.ToLower(http.CanonicalHeaderKey(strings.TrimSpace(h)))
	}
	return out
}
