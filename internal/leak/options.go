package leak

import (
	"github.com/apikey-operator/apikey-operator/internal/connlimit"

	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
)

// Reaction is what a leak report does to the key a token belongs to.
type Reaction string

// The reactions, chosen per namespace by the
// keys.apikey-operator.io/leak-reaction annotation, else --leak-reaction.
const (
	// Disable sets spec.enabled=false: Ready=False reason Leaked.
	Disable Reaction = "disable"
	// Rotate replaces a minted key's token at once, with no grace
	// period for the leaked one; a hash-only key is disabled instead.
	Rotate Reaction = "rotate"
	// Report records the report (status, event, metric) and changes
	// nothing else.
	Report Reaction = "report"
)

// ParseReaction reads a reaction's name.
func ParseReaction(s string) (Reaction, error) {
	switch r := Reaction(s); r {
	case Disable, Rotate, Report:
		return r, nil
	}
	return "", fmt.Errorf("%q is not a reaction: use disable, rotate or report", s)
}

// Options are the leak endpoint's settings, bound to flags.
type Options struct {
	// BindAddress of the leak listener; "0" (the default) turns it off.
	BindAddress string
	// TLSCertFile and TLSKeyFile turn on TLS; both or neither.
	TLSCertFile, TLSKeyFile string
	// GitHubKeysURL is where GitHub's signing keys are fetched from.
	GitHubKeysURL string
	// GitHubKeysMaxAge is how long the fetched keys are trusted.
	GitHubKeysMaxAge time.Duration
	// GitHubKeysMinRefetch is the least time between two fetches.
	GitHubKeysMinRefetch time.Duration
	// MaxBodyBytes bounds a report's body.
	MaxBodyBytes int64
	// Reaction is the default reaction.
	Reaction string
	// ReplayWindow is how long a received report is remembered.
	ReplayWindow time.Duration
	// Connections bounds the listener's connections; the operator sets
	// its one connlimit.Options. nil: no limits, the default idle timeout.
	Connections *connlimit.Options
}

// NewOptions returns the defaults: off; GitHub's key endpoint; 1 MiB.
func NewOptions() *Options {
	return &Options{
		BindAddress:          "0",
		GitHubKeysURL:        GitHubKeysURL,
		GitHubKeysMaxAge:     DefaultKeysMaxAge,
		GitHubKeysMinRefetch: DefaultKeysMinRefetch,
		MaxBodyBytes:         1 << 20,
		Reaction:             string(Disable),
		ReplayWindow:         24 * time.Hour,
	}
}

// Enabled tells whether the endpoint runs.
func (o *Options) Enabled() bool { return o.BindAddress != "0" && o.BindAddress != "" }

// AddFlags binds the options to a flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.BindAddress, "leak-bind-address", o.BindAddress, "Address of the leak endpoint that secret scanners call with tokens found in public (POST /v1/leaks/github, GitHub's secret scanning partner program; docs/leaks.md); \"0\" turns it off.")
	fs.StringVar(&o.TLSCertFile, "leak-tls-cert-file", o.TLSCertFile, "PEM certificate (chain) for TLS on the leak endpoint; plain HTTP when unset (terminate TLS in front of it).")
	fs.StringVar(&o.TLSKeyFile, "leak-tls-private-key-file", o.TLSKeyFile, "PEM private key matching --leak-tls-cert-file.")
	fs.StringVar(&o.GitHubKeysURL, "leak-github-keys-url", o.GitHubKeysURL, "Where GitHub's secret scanning signing keys are published; reports are verified against them (fetched on first use, when the cached keys are older than --leak-github-keys-max-age, and when a report names an unknown key).")
	fs.DurationVar(&o.GitHubKeysMaxAge, "leak-github-keys-max-age", o.GitHubKeysMaxAge, "How long fetched signing keys are trusted before the next report fetches them again, so a key GitHub withdrew stops being accepted.")
	fs.DurationVar(&o.GitHubKeysMinRefetch, "leak-github-keys-min-interval", o.GitHubKeysMinRefetch, "The least time between two fetches of the signing keys (an unknown key identifier, a failed fetch): GitHub allows 60 unauthenticated requests an hour per address.")
	fs.Int64Var(&o.MaxBodyBytes, "leak-max-body-bytes", o.MaxBodyBytes, "Largest report body accepted; larger ones get 413.")
	fs.StringVar(&o.Reaction, "leak-reaction", o.Reaction, "What a report does to the key of a reported token, unless its Namespace's keys.apikey-operator.io/leak-reaction annotation says otherwise: disable, rotate (minted keys; hash-only keys are disabled) or report.")
	fs.DurationVar(&o.ReplayWindow, "leak-replay-window", o.ReplayWindow, "How long a received report is remembered: the same body again within it gets 409 and changes nothing.")
}

// Validate reports every bad setting at once.
func (o *Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, errors.New("--leak-tls-cert-file and --leak-tls-private-key-file go together: set both or neither"))
	}
	if u, err := url.Parse(o.GitHubKeysURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--leak-github-keys-url %q must be an http(s) URL, such as %s", o.GitHubKeysURL, GitHubKeysURL))
	}
	if o.GitHubKeysMinRefetch < time.Second {
		errs = append(errs, errors.New("--leak-github-keys-min-interval must be at least 1s"))
	}
	if o.GitHubKeysMaxAge < o.GitHubKeysMinRefetch {
		errs = append(errs, fmt.Errorf("--leak-github-keys-max-age (%s) must not be shorter than --leak-github-keys-min-interval (%s)", o.GitHubKeysMaxAge, o.GitHubKeysMinRefetch))
	}
	if o.MaxBodyBytes < 1024 || o.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("--leak-max-body-bytes must be between 1024 and 67108864, not %d", o.MaxBodyBytes))
	}
	if _, err := ParseReaction(o.Reaction); err != nil {
		errs = append(errs, fmt.Errorf("--leak-reaction: %w", err))
	}
	if o.ReplayWindow < time.Minute {
		errs = append(errs, errors.New("--leak-replay-window must be at least 1m"))
	}
	return errors.Join(errs...)
}
