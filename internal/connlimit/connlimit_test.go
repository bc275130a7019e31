package connlimit

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/pflag"
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
	with := func(f func(*Options)) Options {
		o := NewOptions()
		f(o)
		return *o
	}
	for _, c := range []struct {
		o    Options
		okay bool
	}{
		{*NewOptions(), true},
		{with(func(o *Options) { o.IdleTimeout = 0 }), false},
		{with(func(o *Options) { o.IdleTimeout = 11 * time.Minute }), false},
		{with(func(o *Options) { o.Total[Webhook], o.PerAddress[Webhook] = 10, 11 }), false},
		{with(func(o *Options) { o.Total[Webhook], o.PerAddress[Webhook] = 0, 11 }), true},
	} {
		if err := c.o.Validate(); (err == nil) != c.okay {
			t.Errorf("%+v: %v", c.o, err)
		}
	}
}

func TestFlags(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--max-connections=0,webhook=50", "--max-connections-per-address=probes=3"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range Names {
		want := 0
		if n == Webhook {
			want = 50
		}
		if o.Total[n] != want {
			t.Errorf("total %s = %d, want %d", n, o.Total[n], want)
		}
	}
	if o.PerAddress[Probes] != 3 || o.PerAddress[Verify] != Defaults[Verify].PerAddress {
		t.Errorf("per address: %v", o.PerAddress)
	}
	for _, bad := range []string{"-1", "nosuch=3", "verify=x", "verify"} {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		NewOptions().AddFlags(fs)
		if err := fs.Parse([]string{"--max-connections=" + bad}); err == nil {
			t.Errorf("--max-connections=%s accepted", bad)
		}
	}
	var sum int
	for _, c := range Defaults {
		sum += c.Total
	}
	if sum >= 65536 {
		t.Errorf("the default totals add up to %d, not below 65,536 files", sum)
	}
}

// The refusal metric counts by listener and limit, and carries nothing a
// client sent.
func TestRefusalMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := NewMetrics(reg); err != nil || again.refusedVec != m.refusedVec {
		t.Fatalf("a second registration must reuse the first: %v", err)
	}
	o := NewOptions()
	o.Metrics = m
	o.Total[Webhook], o.PerAddress[Webhook] = 3, 1
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := o.Listen(Webhook, raw, nil)
	t.Cleanup(func() { l.Close() })
	go serve(l)
	addr := l.Addr().String()
	c1, _ := dial(t, addr, "127.0.2.1")
	defer c1.Close()
	dial(t, addr, "127.0.2.1") // per address
	c2, _ := dial(t, addr, "127.0.2.2")
	defer c2.Close()
	c3, _ := dial(t, addr, "127.0.2.3")
	defer c3.Close()
	dial(t, addr, "127.0.2.4") // total
	if got := testutil.ToFloat64(m.refusedVec.WithLabelValues("webhook", ReasonPerAddress)); got != 1 {
		t.Errorf("per_address refusals = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.refusedVec.WithLabelValues("webhook", ReasonTotal)); got != 1 {
		t.Errorf("total refusals = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.openVec.WithLabelValues("webhook")); got != 3 {
		t.Errorf("open = %v, want 3", got)
	}
	out, err := testutil.CollectAndFormat(m.refusedVec, expfmt.TypeTextPlain, "apikey_connections_refused_total")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "127.0.2") {
		t.Errorf("an address reached the metric:\n%s", out)
	}
}

// Reap closes a connection idle for longer than the timeout, and never
// one with a request in flight.
func TestReap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Limits{})
	stop := make(chan struct{})
	defer close(stop)
	l.Reap(300*time.Millisecond, stop)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(l.Track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	})))
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	idle := &http.Transport{}
	defer idle.CloseIdleConnections()
	resp, err := (&http.Client{Transport: idle}).Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats.Open.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := l.Stats.Open.Load(); got != 1 {
		t.Fatalf("open = %d after the idle timeout, want only the busy one", got)
	}
	time.Sleep(time.Second) // well past the timeout: the busy one stays
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("a request longer than the idle timeout was cut: %v", err)
	}
}
