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
//
// Every listener of the binary is named (Name) and takes its limits from
// one Options, which owns the flags: no listener has flags of its own.
package connlimit

import (
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
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
	// Metrics, when set, counts the listener's refusals and open
	// connections under its Name.
	Metrics *Metrics
	Name    Name
	// IdleTimeout is for a server that cannot set its own (Reap); 0: the
	// default.
	IdleTimeout time.Duration
}

// Stats count a listener's connections.
type Stats struct {
	Open     atomic.Int64 // held now
	Refused  atomic.Int64 // closed at once for a limit, since start
	Accepted atomic.Int64 // since start
}

// Why a connection was refused: the metric's reason label.
const (
	ReasonTotal      = "total"
	ReasonPerAddress = "per_address"
)

// Listener is a net.Listener with Limits.
type Listener struct {
	net.Listener
	limits Limits
	Stats  Stats

	mu     sync.Mutex
	byAddr map[netip.Addr]int
	peak   int64
	idle   atomic.Pointer[reaper] // nil unless Reap was called
}

// Listen wraps l; with no limit at all it still counts.
func Listen(l net.Listener, limits Limits) *Listener {
	return &Listener{Listener: l, limits: limits, byAddr: map[netip.Addr]int{}}
}

// IdleTimeout is the listener's idle timeout, for Reap.
func (l *Listener) IdleTimeout() time.Duration {
	if l.limits.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return l.limits.IdleTimeout
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
		if reason := l.admit(addr, counted); reason != "" {
			l.Stats.Refused.Add(1)
			l.limits.Metrics.refused(l.limits.Name, reason)
			_ = c.Close()
			continue
		}
		l.Stats.Accepted.Add(1)
		l.limits.Metrics.open(l.limits.Name, 1)
		lc := &conn{Conn: c, l: l, addr: addr, counted: counted}
		if r := l.idle.Load(); r != nil {
			r.add(lc)
		}
		return lc, nil
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

// admit takes a slot, or says which limit refuses one.
func (l *Listener) admit(addr netip.Addr, counted bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	open := l.Stats.Open.Load()
	if l.limits.Total > 0 && open >= int64(l.limits.Total) {
		return ReasonTotal
	}
	if counted {
		if l.byAddr[addr] >= l.limits.PerAddress {
			return ReasonPerAddress
		}
		l.byAddr[addr]++
	}
	open = l.Stats.Open.Add(1)
	if open > l.peak {
		l.peak = open
	}
	return ""
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
	l.limits.Metrics.open(l.limits.Name, -1)
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

	// For Reap: requests in flight and when the last one ended (unix ns).
	busy     atomic.Int64
	lastDone atomic.Int64
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if r := c.l.idle.Load(); r != nil {
			r.remove(c)
		}
		c.l.release(c.addr, c.counted)
	})
	return err
}
