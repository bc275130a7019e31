// Command verifybench serves the two endpoints hack/bench.sh compares with
// one load tool in one run: a plain net/http hello-world, and the real
// forward-auth endpoint over an index holding one valid key among
// -keys filler keys. It prints "hello=<addr> auth=<addr>" and the token's
// file, then serves until killed. With -redis it starts a redis-server
// on loopback and counts the key's rate limit there (limits.Shared), as
// --limits-redis-url does. It is a benchmark harness, not part of the
// operator.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apikey-operator/apikey-operator/internal/limits"
	"github.com/apikey-operator/apikey-operator/internal/limits/limitstest"
	"github.com/apikey-operator/apikey-operator/internal/verify"
	"github.com/apikey-operator/apikey-operator/internal/verify/benchkit"
)

func main() {
	keys := flag.Int("keys", 10000, "keys in the index")
	tokenFile := flag.String("token-file", "", "where to write the valid token (mode 0600)")
	withRedis := flag.Bool("redis", false, "count the key's rate limit in a redis-server started on loopback")
	leases := flag.Bool("redis-leases", true, "with -redis: let the replica lease requests of the busy key (--limits-redis-leases)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keys, *tokenFile, *withRedis, *leases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, keys int, tokenFile string, withRedis, leases bool) error {
	log := logr.Discard()
	reg := prometheus.NewRegistry()
	var lim limits.Provider = limits.Local{}
	if withRedis {
		dir, err := os.MkdirTemp("", "verifybench-redis")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		rs, err := limitstest.NewServer(dir)
		if err != nil {
			return err
		}
		defer rs.Stop()
		o := limits.NewOptions()
		// A generous timeout: the benchmark measures Redis, not the
		// fallback a stall of this busy machine would turn on.
		o.RedisURL, o.RedisTimeout, o.RedisLeases = rs.URL(), time.Second, leases
		shared, err := limits.NewShared(o, limits.Local{}, reg, log)
		if err != nil {
			return err
		}
		go func() { _ = shared.Start(ctx) }()
		defer func() {
			if shared.FallingBack() {
				fmt.Fprintln(os.Stderr, "verifybench: Redis did not answer within 1s at the end: the figures mix in the local limiter")
			}
		}()
		lim = shared
	}
	ix, err := benchkit.Index(keys, tokenFile, lim)
	if err != nil {
		return err
	}
	srv, err := verify.NewServerFromIndex(verify.NewOptions(), ix, verify.Deps{Registerer: reg, Log: &log})
	if err != nil {
		return err
	}
	authLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	helloLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("hello=%s auth=%s\n", helloLn.Addr(), authLn.Addr())
	hello := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("hello, world\n"))
	})}
	go func() { _ = hello.Serve(helloLn) }()
	return srv.Serve(ctx, authLn)
}
