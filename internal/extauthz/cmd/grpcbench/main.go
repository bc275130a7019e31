// Command grpcbench is the harness behind make bench's gRPC ext_authz
// figures. "grpcbench serve" runs, in one process, a baseline gRPC
// Authorization server that answers OK without doing any work and the
// real ext_authz server over an index holding one valid key among -keys
// filler keys; it prints "baseline=<addr> extauthz=<addr>", writes the
// valid token to -token-file and serves until killed. "grpcbench load"
// drives one of them with go-control-plane's client over keep-alive
// connections and prints "<requests/s> <p50 ms> <p99 ms>". It is a
// benchmark harness, not part of the operator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/apikey-operator/apikey-operator/internal/extauthz"
	"github.com/apikey-operator/apikey-operator/internal/verify"
	"github.com/apikey-operator/apikey-operator/internal/verify/benchkit"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpcbench serve|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use serve or load", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcbench:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	keys := fs.Int("keys", 10000, "keys in the index")
	tokenFile := fs.String("token-file", "", "where to write the valid token (mode 0600)")
	_ = fs.Parse(args)
	ix, err := benchkit.Index(*keys, *tokenFile, nil)
	if err != nil {
		return err
	}
	log := logr.Discard()
	vo := verify.NewOptions()
	vo.TrustedProxies = []string{"127.0.0.1"}
	vs, err := verify.NewServerFromIndex(vo, ix, verify.Deps{Registerer: prometheus.NewRegistry(), Log: &log})
	if err != nil {
		return err
	}
	ea, err := extauthz.NewServer(extauthz.NewOptions(), extauthz.FromVerify(vs), log)
	if err != nil {
		return err
	}
	vln, eln, bln := listen(), listen(), listen()
	if vln == nil || eln == nil || bln == nil {
		return errors.New("cannot listen on 127.0.0.1")
	}
	ctx := context.Background()
	go func() { _ = vs.Serve(ctx, vln) }() // marks the index synced
	base := grpc.NewServer()
	authv3.RegisterAuthorizationServer(base, baseline{})
	go func() { _ = base.Serve(bln) }()
	fmt.Printf("baseline=%s extauthz=%s\n", bln.Addr(), eln.Addr())
	return ea.Serve(ctx, eln)
}

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	return ln
}

// baseline answers every Check with OK and does nothing else.
type baseline struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}

func (baseline) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port of the server")
	tokenFile := fs.String("token-file", "", "file holding the key to present")
	conns := fs.Int("connections", 4, "gRPC connections (HTTP/2)")
	workers := fs.Int("workers", 32, "concurrent callers, spread over the connections")
	duration := fs.Duration("duration", 10*time.Second, "how long to load")
	rate := fs.Float64("rate", 0, "total requests per second; 0: as fast as answered")
	_ = fs.Parse(args)
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return err
	}
	req := request(strings.TrimSpace(string(tok)))
	clients := make([]authv3.AuthorizationClient, *conns)
	for i := range clients {
		c, err := grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = authv3.NewAuthorizationClient(c)
		// Check once: the answer must be OK, and the connection warm.
		resp, err := clients[i].Check(context.Background(), req)
		if err != nil {
			return err
		}
		if resp.GetStatus().GetCode() != 0 {
			return fmt.Errorf("%s answered %v, not OK", *addr, resp.GetStatus())
		}
	}
	lat := run(clients, req, *workers, *duration, *rate)
	if len(lat) == 0 {
		return errors.New("no request completed")
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	fmt.Printf("%.0f %.3f %.3f\n", float64(len(lat))/duration.Seconds(), q(0.5), q(0.99))
	return nil
}

// run calls Check from each worker until the time is up and returns every
// call's latency in nanoseconds. With a rate, each worker waits for its
// share of the schedule (an open loop), so latency is measured below
// saturation.
func run(clients []authv3.AuthorizationClient, req *authv3.CheckRequest, workers int, d time.Duration, rate float64) []int64 {
	var mu sync.Mutex
	var all []int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(workers) / rate * 1e9)
			}
			next := time.Now()
			lat := make([]int64, 0, 1<<16)
			for time.Now().Before(deadline) {
				if interval > 0 {
					if wait := time.Until(next); wait > 0 {
						time.Sleep(wait)
					}
					next = next.Add(interval)
				}
				start := time.Now()
				resp, err := c.Check(context.Background(), req)
				if err != nil || resp.GetStatus().GetCode() != 0 {
					continue
				}
				lat = append(lat, int64(time.Since(start)))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

// request is what Envoy sends for "GET /invoices" with the key, from a
// client address, on a route that requires invoices:read.
func request(tok string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 43210}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/invoices", Host: "api.example.com", Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "GET", ":path": "/invoices",
				"authorization": "Bearer " + tok, "user-agent": "curl/8.5.0", "accept": "*/*",
				"x-forwarded-proto": "https", "x-request-id": "7d2c5c5e-0c1d-4a3b-9f3e-2b1f0c6a7e11",
			},
		}},
		ContextExtensions: map[string]string{extauthz.PermissionExtension: "invoices:read", extauthz.NamespaceExtension: "bench"},
	}}
}
