// Command verifybench serves the two endpoints hack/bench.sh compares with
// one load tool in one run: a plain net/http hello-world, and the real
// forward-auth endpoint over an index holding one valid key among
// -keys filler keys. It prints "hello=<addr> auth=<addr>" and the token's
// file, then serves until killed. It is a benchmark harness, not part of
// the operator.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
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
	ix := verify.NewIndex()
	for i := range keys - 1 {
		ix.SetKey(filler(i))
	}
	tok, err := token.Mint("")
	if err != nil {
		return err
	}
	ix.SetKey(&keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "bench"},
		Spec:       keysv1.ApiKeySpec{Permissions: []keysv1.Permission{"invoices:read"}},
		Status:     keysv1.ApiKeyStatus{Hash: token.Hash(tok), KeyPrefix: token.DisplayPrefix(tok), ExpiresAt: &metav1.Time{Time: time.Now().Add(24 * time.Hour)}},
	})
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
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

// filler is a key whose token nobody holds.
func filler(i int) *keysv1.ApiKey {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return &keysv1.ApiKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("filler-%d", i)},
		Status:     keysv1.ApiKeyStatus{Hash: token.FormatSum(b)},
	}
}
