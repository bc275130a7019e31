// Command verifybench serves the two endpoints hack/bench.sh compares with
// one load tool in one run: a plain net/http hello-world, and the real
// forward-auth endpoint over an index holding one valid key among
// -keys filler keys. It prints "hello=<addr> auth=<addr>" and the token's
// file, then serves until killed. It is a benchmark harness, not part of
// the operator.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apikey-operator/apikey-operator/internal/verify"
	"github.com/apikey-operator/apikey-operator/internal/verify/benchkit"
)

func main() {
	keys := flag.Int("keys", 10000, "keys in the index")
	tokenFile := flag.String("token-file", "", "where to write the valid token (mode 0600)")
	flag.Parse()
	if err := run(*keys, *tokenFile); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(keys int, tokenFile string) error {
	ix, err := benchkit.Index(keys, tokenFile)
	if err != nil {
		return err
	}
	log := logr.Discard()
	srv, err := verify.NewServerFromIndex(verify.NewOptions(), ix, verify.Deps{Registerer: prometheus.NewRegistry(), Log: &log})
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
	return srv.Serve(context.Background(), authLn)
}
