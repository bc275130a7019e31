package verify

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/apikey-operator/apikey-operator/internal/connlimit"
)

// Options are the verify endpoints' settings, bound to command-line flags.
type Options struct {
	// BindAddress of the verify listener, separate from the API server's
	// secure port so gateways' calls skip its filter chain.
	BindAddress string
	// TrustedProxies are the IPs and CIDR blocks whose X-Forwarded-For and
	// X-Real-IP headers name the client.
	TrustedProxies []string
	// TLSCertFile and TLSKeyFile turn on TLS; both or neither.
	TLSCertFile string
	TLSKeyFile  string
	// FailureRate and FailureBurst are each source address's budget of
	// failed verifications (per second, and at once); 0 turns the guard off.
	FailureRate  float64
	FailureBurst int
	// AnyNamespace accepts verifications that name no namespace and no
	// audience, for keys of every namespace: for single-tenant clusters
	// only, since any tenant's key then opens every gateway.
	AnyNamespace bool
	// CacheMaxAge is the max-age of the Cache-Control hint on allowed
	// forward-auth answers ("private, max-age=N"); refusals say no-store.
	// A gateway that caches verdicts keeps a revoked key working for up
	// to this long. Default 0: never reuse a verdict.
	CacheMaxAge time.Duration
	// LastUsedFlushInterval is how often status.lastUsedAt is written for
	// the keys used since; at least a minute.
	LastUsedFlushInterval time.Duration
	// MetricsPerKey exports apikey_key_verifications_total with a series
	// per key: off by default for its cardinality.
	MetricsPerKey bool
	// Connections bounds the listener's connections (--trusted-proxies
	// exempt per address) and sets the idle timeout; the operator's one
	// connlimit.Options, whose flags it binds. nil: no limits, the
	// default idle timeout.
	Connections *connlimit.Options
}

// NewOptions returns the defaults of DESIGN.md.
func NewOptions() *Options {
	return &Options{
		BindAddress:           ":8090",
		FailureRate:           5,
		FailureBurst:          20,
		LastUsedFlushInterval: time.Minute,
	}
}

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.BindAddress, "verify-bind-address", o.BindAddress, "Address of the verify endpoints (POST /v1/keys/verify, /v1/auth for gateways' forward-auth); \"0\" turns them off.")
	fs.StringSliceVar(&o.TrustedProxies, "trusted-proxies", o.TrustedProxies, "IPs and CIDR blocks of the gateways and proxies whose X-Forwarded-For and X-Real-IP headers are believed (comma-separated). Requests from other peers are judged by their own address.")
	fs.StringVar(&o.TLSCertFile, "verify-tls-cert-file", o.TLSCertFile, "PEM certificate (chain) for TLS on the verify endpoints; plain HTTP when unset.")
	fs.StringVar(&o.TLSKeyFile, "verify-tls-private-key-file", o.TLSKeyFile, "PEM private key matching --verify-tls-cert-file.")
	fs.Float64Var(&o.FailureRate, "verify-failure-rate", o.FailureRate, "Failed verifications (unknown or malformed keys) each source address may make per second before getting 429; 0 turns the guard off. Valid keys are never limited by it.")
	fs.IntVar(&o.FailureBurst, "verify-failure-burst", o.FailureBurst, "Failed verifications a source address may make at once.")
	fs.BoolVar(&o.AnyNamespace, "verify-any-namespace", o.AnyNamespace, "Accept verifications (forward-auth, POST /v1/keys/verify, ApiKeyReview) that name no namespace and no audience, for keys of every namespace. Only for single-tenant clusters: with it, a key minted in any namespace opens every gateway that does not name its namespace or audience. Without it such verifications are refused (400, or reason Unscoped).")
	fs.DurationVar(&o.CacheMaxAge, "verify-cache-max-age", o.CacheMaxAge, "max-age of the \"Cache-Control: private, max-age=N\" hint on allowed forward-auth answers (whole seconds; refusals always say no-store). A gateway that caches verdicts (NGINX proxy_cache, for one) then keeps serving a revoked key for up to this long; 0, the default, lets no verdict be reused.")
	fs.DurationVar(&o.LastUsedFlushInterval, "last-used-flush-interval", o.LastUsedFlushInterval, "How often status.lastUsedAt and status.usage are written, in one batch, for the keys used since; at least 1m.")
	fs.BoolVar(&o.MetricsPerKey, "metrics-per-key", o.MetricsPerKey, "Export apikey_key_verifications_total{namespace,name,result} with two series per ApiKey (allowed, refused) on every verify replica. Off by default: with many keys it multiplies the series Prometheus stores (docs/operations.md).")
}

// Validate reports options that cannot work, saying how to fix them.
func (o *Options) Validate() error {
	var errs []error
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--verify-tls-cert-file and --verify-tls-private-key-file go together: set both or neither"))
	}
	if _, err := parseProxies(o.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if o.FailureRate < 0 || o.FailureBurst < 1 {
		errs = append(errs, errors.New("--verify-failure-rate must be 0 or more and --verify-failure-burst at least 1"))
	}
	if o.CacheMaxAge < 0 || o.CacheMaxAge > time.Hour {
		errs = append(errs, fmt.Errorf("--verify-cache-max-age must be between 0 and 1h (a gateway cache delays revocation by as much), not %s", o.CacheMaxAge))
	}
	if o.LastUsedFlushInterval < time.Minute {
		errs = append(errs, fmt.Errorf("--last-used-flush-interval must be at least 1m (status is written at most once a minute per key), not %s", o.LastUsedFlushInterval))
	}
	return errors.Join(errs...)
}
