package connlimit

import (
	"net/http"
	"sync"
	"time"
)

// Reap closes connections that have carried no request for idle, for a
// server whose http.Server this process does not build: k8s.io/apiserver
// builds the secure port's with a fixed 90 s IdleTimeout (HTTP/1.1 and
// HTTP/2 alike) and offers no setting for it. Requests are seen through
// Track, which must wrap the server's whole handler; a connection with a
// request in flight (a long list, a watch) is never closed. It runs until
// stop is closed.
func (l *Listener) Reap(idle time.Duration, stop <-chan struct{}) {
	r := &reaper{idle: idle, conns: map[string]*conn{}}
	l.idle.Store(r)
	tick := max(idle/4, 100*time.Millisecond)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				for _, c := range r.idleSince(now.Add(-idle)) {
					_ = c.Close()
				}
			}
		}
	}()
}

// Track marks each request's connection busy while the request runs, for
// Reap. A request is matched to its connection by its remote address,
// which is unique per connection on one listener, for HTTP/1.1 and
// HTTP/2 alike.
func (l *Listener) Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := l.idle.Load()
		if r == nil {
			next.ServeHTTP(w, req)
			return
		}
		c := r.get(req.RemoteAddr)
		if c != nil {
			c.busy.Add(1)
			defer func() {
				c.lastDone.Store(time.Now().UnixNano())
				c.busy.Add(-1)
			}()
		}
		next.ServeHTTP(w, req)
	})
}

type reaper struct {
	idle  time.Duration
	mu    sync.Mutex
	conns map[string]*conn // by remote address
}

func (r *reaper) add(c *conn) {
	c.lastDone.Store(time.Now().UnixNano())
	r.mu.Lock()
	r.conns[c.RemoteAddr().String()] = c
	r.mu.Unlock()
}

func (r *reaper) remove(c *conn) {
	r.mu.Lock()
	if r.conns[c.RemoteAddr().String()] == c {
		delete(r.conns, c.RemoteAddr().String())
	}
	r.mu.Unlock()
}

func (r *reaper) get(remote string) *conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[remote]
}

// idleSince lists the connections with no request in flight whose last
// request ended (or which were accepted) before t.
func (r *reaper) idleSince(t time.Time) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*conn
	for _, c := range r.conns {
		if c.busy.Load() == 0 && c.lastDone.Load() < t.UnixNano() {
			out = append(out, c)
		}
	}
	return out
}
