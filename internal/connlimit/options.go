package connlimit

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Name is a listener of the binary; the flags and the metrics' listener
// label use it.
type Name string

// Every listener of the binary.
const (
	Verify          Name = "verify"    // verify and forward-auth (gateways)
	API             Name = "api"       // the API server's secure port: REST dialects, aggregated API
	ExtAuthz        Name = "ext-authz" // gRPC ext_authz (Envoy)
	Leak            Name = "leak"      // secret scanners' leak reports
	Webhook         Name = "webhook"   // admission webhook (kube-apiserver)
	MetricsEndpoint Name = "metrics"   // Prometheus
	Probes          Name = "probes"    // /healthz, /readyz (kubelet)
)

// Names lists every listener, in the order --help prints them.
var Names = []Name{Verify, API, ExtAuthz, Leak, Webhook, MetricsEndpoint, Probes}

// Cap is one listener's default limits.
type Cap struct{ Total, PerAddress int }

// Caps are limits by listener.
type Caps map[Name]Cap

// Defaults per listener. Each total is far below a container's usual
// file limit (1,048,576; at least 65,536 where the soft limit was raised
// to the hard one), and together they stay below 65,536, so a flood on
// one listener leaves descriptors for the others. The traffic ports are
// sized for a busy gateway's keep-alive pool, which --trusted-proxies
// exempts from the per-address limit anyway; the ports only
// kube-apiserver, Prometheus or the kubelet call need far fewer, and one
// address may take at most a quarter of them, so a pod that reaches the
// port cannot crowd out the caller it exists for.
var Defaults = Caps{
	Verify:          {10000, 512},
	API:             {10000, 512},
	ExtAuthz:        {10000, 512},
	Leak:            {1000, 64},
	Webhook:         {1000, 250},
	MetricsEndpoint: {100, 25},
	Probes:          {100, 25},
}

// DefaultIdleTimeout is shorter than the 2 minutes verify had and the
// 90 s of k8s.io/apiserver, which let a flood of idle connections pile
// up; longer than the usual gateway's keep-alive reuse, so pools stay
// warm under steady load.
const DefaultIdleTimeout = 30 * time.Second

// Options are the connection flags of the whole binary: one limit per
// listener, counted separately, and one idle timeout.
type Options struct {
	Total      PerListener
	PerAddress PerListener
	// IdleTimeout closes a keep-alive connection that has carried no
	// request for this long, on every listener.
	IdleTimeout time.Duration
	// Metrics count refusals; not a flag: the process sets it once it has
	// a registry (operator.Build). nil: not counted.
	Metrics *Metrics
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	o := &Options{Total: PerListener{}, PerAddress: PerListener{}, IdleTimeout: DefaultIdleTimeout}
	for n, c := range Defaults {
		o.Total[n], o.PerAddress[n] = c.Total, c.PerAddress
	}
	return o
}

// AddFlags binds the options.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.Var(&o.Total, "max-connections", "Connections each listener holds at once; one over it is closed at once. Bounds the file descriptors a flood of idle connections can take, so the other listeners (the webhook and the probes among them) keep serving. A number sets every listener; NAME=N sets one (later entries win), with NAME one of "+names()+". 0: no limit. Default: "+Defaults.String(func(c Cap) int { return c.Total })+".")
	fs.Var(&o.PerAddress, "max-connections-per-address", "Connections one client IP address (IPv6: one /64) may hold at once on each listener; --trusted-proxies are exempt on verify and ext-authz (a gateway carries many clients). Keeps other clients served while one address floods. Same form as --max-connections. Default: "+Defaults.String(func(c Cap) int { return c.PerAddress })+".")
	fs.DurationVar(&o.IdleTimeout, "connection-idle-timeout", o.IdleTimeout, "Close a keep-alive connection that has carried no request for this long, on every listener (1s to 10m).")
}

// Validate reports impossible values.
func (o *Options) Validate() error {
	var errs []error
	for _, n := range Names {
		t, p := o.Total[n], o.PerAddress[n]
		if t > 0 && p > t {
			errs = append(errs, fmt.Errorf("--max-connections-per-address for %s (%d) cannot exceed --max-connections for it (%d)", n, p, t))
		}
	}
	if o.IdleTimeout < time.Second || o.IdleTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--connection-idle-timeout=%s: give a duration from 1s to 10m, such as %s", o.IdleTimeout, DefaultIdleTimeout))
	}
	return errors.Join(errs...)
}

// Limits are the options for one listener, exempting the given
// addresses from the per-address limit. nil options: no limits.
func (o *Options) Limits(n Name, exempt func(netip.Addr) bool) Limits {
	if o == nil {
		return Limits{Name: n}
	}
	return Limits{Name: n, Total: o.Total[n], PerAddress: o.PerAddress[n], Exempt: exempt, Metrics: o.Metrics, IdleTimeout: o.IdleTimeout}
}

// Listen wraps ln with the limits of listener n.
func (o *Options) Listen(n Name, ln net.Listener, exempt func(netip.Addr) bool) *Listener {
	return Listen(ln, o.Limits(n, exempt))
}

// Idle is the idle timeout; nil options: the default.
func (o *Options) Idle() time.Duration {
	if o == nil {
		return DefaultIdleTimeout
	}
	return o.IdleTimeout
}

// PerListener is a flag value: a number for every listener, then
// NAME=N for one, comma-separated.
type PerListener map[Name]int

func (p PerListener) String() string {
	return capsString(func(n Name) int { return p[n] })
}

// Set parses "N", "NAME=N" or a comma-separated list of both.
func (p *PerListener) Set(s string) error {
	if *p == nil {
		*p = PerListener{}
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		name, num, named := strings.Cut(part, "=")
		if !named {
			num = name
		}
		v, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || v < 0 {
			return fmt.Errorf("%q: give a number of connections, 0 (no limit) or more, for every listener or as NAME=N", part)
		}
		if !named {
			for _, n := range Names {
				(*p)[n] = v
			}
			continue
		}
		n := Name(strings.TrimSpace(name))
		if !slices.Contains(Names, n) {
			return fmt.Errorf("%q: no listener %q; listeners: %s", part, n, names())
		}
		(*p)[n] = v
	}
	return nil
}

func (p *PerListener) Type() string { return "N|NAME=N,..." }

// String prints one of the defaults' fields for --help.
func (d Caps) String(field func(Cap) int) string {
	return capsString(func(n Name) int { return field(d[n]) })
}

func capsString(v func(Name) int) string {
	parts := make([]string, len(Names))
	for i, n := range Names {
		parts[i] = fmt.Sprintf("%s=%d", n, v(n))
	}
	return strings.Join(parts, ",")
}

func names() string {
	s := make([]string, len(Names))
	for i, n := range Names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}
