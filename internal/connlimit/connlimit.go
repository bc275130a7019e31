// Package connlimit bounds the connections one listener holds: in all,
// and per client address. Idle keep-alive connections cost a file
// descriptor and buffers each; without a bound, one address holding tens
// of thousands of them used up the process's file limit, and every port
// of the process — the webhook and the probes included — stopped
// accepting. With a bound per listener, a flood on one port stays there.
//
// A connection over a limit is accepted and closed at once, so the
// kernel's backlog never fills with clients waiting for a slot, and the
// process keeps accepting everyone else. The per-address limit is what
// keeps a well-behaved client served while another address floods; the
// total bounds what all addresses together can take.
package connlimit

import (
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
)

// Limits of one listener; 0 means no limit.
type Limits struct {
	// Total connections the listener holds at once.
	Total int
	// PerAddress connections from one client IP at once (IPv6: one /64,
	// which one host usually holds whole).
	PerAddress int
	// Exempt, when set, names addresses not counted per address: the
	// trusted gateways that carry every client's requests.
	Exempt func(netip.Addr) bool
}

// Options are the flags: the same limits for each listener of the
// process (verify, the API server's secure port, gRPC ext_authz), each
// counted separately.
type Options struct {
	MaxConnections           int
	MaxConnectionsPerAddress int
	// IdleTimeout closes a keep-alive connection that has carried no
	// request for this long (verify and gRPC ext_authz; the API server's
	// secure port keeps k8s.io/apiserver's 90 s).
	IdleTimeout time.Duration
}

// Defaults: far below a container's usual file limit (1,048,576; at least
// 65,536 where the soft limit was raised to the hard one), so a flood on
// one listener leaves descriptors for the others, and high enough for a
// busy gateway's keep-alive pool, which --trusted-proxies exempts from
// the per-address limit anyway.
const (
	DefaultMaxConnections           = 10000
	DefaultMaxConnectionsPerAddress = 512
	// DefaultIdleTimeout is shorter than the 2 minutes verify had, which
	// let a flood of idle connections pile up; longer than the usual
	// gateway's keep-alive reuse, so pools stay warm under steady load.
	DefaultIdleTimeout = 30 * time.Second
)

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{MaxConnections: DefaultMaxConnections, MaxConnectionsPerAddress: DefaultMaxConnectionsPerAddress, IdleTimeout: DefaultIdleTimeout}
}

// AddFlags binds the options.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.MaxConnections, "max-connections", o.MaxConnections, "Connections each listener (verify, the API server's secure port, gRPC ext_authz) holds at once; one over it is closed at once. Bounds the file descriptors a flood of idle connections can take, so the other ports, the webhook and the probes keep serving. 0: no limit.")
	fs.DurationVar(&o.IdleTimeout, "connection-idle-timeout", o.IdleTimeout, "Close a keep-alive connection to the verify or gRPC ext_authz port that has carried no request for this long (1s to 10m); the API server's secure port keeps k8s.io/apiserver's 90s.")
	fs.IntVar(&o.MaxConnectionsPerAddress, "max-connections-per-address", o.MaxConnectionsPerAddress, "Connections one client IP address (IPv6: one /64) may hold at once on each listener; --trusted-proxies are exempt (a gateway carries many clients). Keeps other clients served while one address floods. 0: no limit.")
}

// Validate reports impossible values.
func (o *Options) Validate() error {
	if o.MaxConnections < 0 || o.MaxConnectionsPerAddress < 0 {
		return fmt.Errorf("--max-connections (%d) and --max-connections-per-address (%d) must be 0 (no limit) or more", o.MaxConnections, o.MaxConnectionsPerAddress)
	}
	if o.IdleTimeout < time.Second || o.IdleTimeout > 10*time.Minute {
		return fmt.Errorf("--connection-idle-timeout=%s: give a duration from 1s to 10m, such as %s", o.IdleTimeout, DefaultIdleTimeout)
	}
	if o.MaxConnections > 0 && o.MaxConnectionsPerAddress > o.MaxConnections {
		return fmt.Errorf("--max-connections-per-address (%d) cannot exceed --max-connections (%d)", o.MaxConnectionsPerAddress, o.MaxConnections)
	}
	return nil
}

// Limits are the options for one listener, exempting the given proxies.
func (o *Options) Limits(exempt func(netip.Addr) bool) Limits {
	return Limits{Total: o.MaxConnections, PerAddress: o.MaxConnectionsPerAddress, Exempt: exempt}
}

// Stats count a listener's connections.
type Stats struct {
	Open     atomic.Int64 // held now
	Refused  atomic.Int64 // closed at once for a limit, since start
	Accepted atomic.Int64 // since start
}

// Listener is a net.Listener with Limits.
type Listener struct {
	net.Listener
	limits Limits
	Stats  Stats

	mu     sync.Mutex
	byAddr map[netip.Addr]int
	peak   int64
}

// Listen wraps l; with no limit at all it still counts.
func Listen(l net.Listener, limits Limits) *Listener {
	return &Listener{Listener: l, limits: limits, byAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the limits, closing the ones
// over them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr, counted := l.key(c.RemoteAddr())
		if !l.admit(addr, counted) {
			l.Stats.Refused.Add(1)
			_ = c.Close()
			continue
		}
		l.Stats.Accepted.Add(1)
		return &conn{Conn: c, l: l, addr: addr, counted: counted}, nil
	}
}

// key is the address a connection counts against, and whether it counts
// per address at all.
func (l *Listener) key(a net.Addr) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap()
	if l.limits.Exempt != nil && l.limits.Exempt(ip) {
		return ip, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, l.limits.PerAddress > 0
}

func (l *Listener) admit(addr netip.Addr, counted bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := l.Stats.Open.Load()
	if l.limits.Total > 0 && open >= int64(l.limits.Total) {
		return false
	}
	if counted {
		if l.byAddr[addr] >= l.limits.PerAddress {
			return false
		}
		l.byAddr[addr]++
	}
	open = l.Stats.Open.Add(1)
	if open > l.peak {
		l.peak = open
	}
	return true
}

// release frees a connection's slot. When a flood has drained (the
// listener is down to a quarter of a peak of at least releaseAbove), the
// memory its connections held is returned to the system now rather than
// over the runtime's next minutes: RSS after a flood otherwise stays up.
func (l *Listener) release(addr netip.Addr, counted bool) {
	l.mu.Lock()
	if counted {
		if n := l.byAddr[addr] - 1; n > 0 {
			l.byAddr[addr] = n
		} else {
			delete(l.byAddr, addr)
		}
	}
	open := l.Stats.Open.Add(-1)
	drained := l.peak >= releaseAbove && open <= l.peak/4
	if drained {
		l.peak = open
	}
	l.mu.Unlock()
	if drained {
		go debug.FreeOSMemory()
	}
}

// releaseAbove is the peak of connections after which a drain returns
// memory to the system.
const releaseAbove = 1000

type conn struct {
	net.Conn
	l       *Listener
	addr    netip.Addr
	counted bool
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr, c.counted) })
	return err
}
