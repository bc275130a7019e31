package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// serve accepts on l and answers one byte on each connection it admits,
// then holds it open until the client closes.
func serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			_, _ = c.Write([]byte{1})
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

// dial connects from a local source IP and tells whether it was served
// (got the byte) or closed at once.
func dial(t *testing.T, addr string, from string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	_, err = c.Read(b)
	switch {
	case err == nil:
		return c, true
	case errors.Is(err, io.EOF), isReset(err):
		c.Close()
		return nil, false
	}
	t.Fatalf("read from %s: %v", from, err)
	return nil, false
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func listen(t *testing.T, lim Limits) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, lim)
	t.Cleanup(func() { l.Close() })
	go serve(l)
	return l
}

func TestPerAddressAndTotal(t *testing.T) {
	l := listen(t, Limits{Total: 4, PerAddress: 2, Exempt: netip.MustParsePrefix("127.0.9.0/24").Contains})
	addr := l.Addr().String()
	var held []net.Conn
	for i := range 2 {
		c, ok := dial(t, addr, "127.0.1.1")
		if !ok {
			t.Fatalf("connection %d from 127.0.1.1 refused under the per-address limit", i)
		}
		held = append(held, c)
	}
	if _, ok := dial(t, addr, "127.0.1.1"); ok {
		t.Fatal("a third connection from 127.0.1.1 was served over the per-address limit of 2")
	}
	c, ok := dial(t, addr, "127.0.1.2")
	if !ok {
		t.Fatal("another address was refused while the first was at its limit")
	}
	held = append(held, c)
	// An exempt (trusted) address is not limited per address, only in total.
	c, ok = dial(t, addr, "127.0.9.1")
	if !ok {
		t.Fatal("a trusted proxy was refused")
	}
	held = append(held, c)
	if _, ok := dial(t, addr, "127.0.1.3"); ok {
		t.Fatal("a fifth connection was served over the total of 4")
	}
	if got := l.Stats.Refused.Load(); got != 2 {
		t.Errorf("refused = %d, want 2", got)
	}
	// Closing frees the slots.
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats.Open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.Stats.Open.Load(); got != 0 {
		t.Fatalf("open after every close = %d, want 0", got)
	}
	for i := range 2 {
		c, ok := dial(t, addr, "127.0.1.1")
		if !ok {
			t.Fatalf("connection %d from 127.0.1.1 refused after the earlier ones closed", i)
		}
		defer c.Close()
	}
}

func TestNoLimits(t *testing.T) {
	l := listen(t, Limits{})
	for range 20 {
		c, ok := dial(t, l.Addr().String(), "127.0.1.1")
		if !ok {
			t.Fatal("refused without limits")
		}
		defer c.Close()
	}
}

func TestIPv6CountsPer64(t *testing.T) {
	l := &Listener{limits: Limits{PerAddress: 1}, byAddr: map[netip.Addr]int{}}
	a, _ := l.key(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1})
	b, _ := l.key(&net.TCPAddr{IP: net.ParseIP("2001:db8::ffff:2"), Port: 2})
	c, _ := l.key(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1"), Port: 3})
	if a != b || a == c {
		t.Errorf("keys %v %v %v: one /64 must share a key, another /64 must not", a, b, c)
	}
	v4, _ := l.key(&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 4})
	if v4 != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("IPv4-mapped %v, want 10.0.0.1", v4)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		okay bool
	}{
		{*NewOptions(), true},
		{Options{IdleTimeout: time.Second}, true},
		{Options{}, false},
		{Options{MaxConnections: -1, IdleTimeout: time.Second}, false},
		{Options{MaxConnections: 10, MaxConnectionsPerAddress: 11, IdleTimeout: time.Second}, false},
		{Options{MaxConnectionsPerAddress: 11, IdleTimeout: time.Second}, true},
	} {
		if err := c.o.Validate(); (err == nil) != c.okay {
			t.Errorf("%+v: %v", c.o, err)
		}
	}
}
