// Command revocationbench measures how long a deleted key keeps working:
// it runs the controller and the verify server against a local control
// plane (bin/), issues N keys, then deletes them one at a time and polls
// forward-auth with each key's token until the first 401. It prints a
// Markdown table for docs/benchmarks.md. A benchmark: it reports, it does
// not pass or fail.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
)

func main() {
	bin := flag.String("bin", "bin", "Directory with kube-apiserver, etcd and kubectl.")
	n := flag.Int("keys", 200, "Keys to issue and revoke.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "revocationbench:", err)
		os.Exit(1)
	}
}

func run(bin string, n int) error {
	dir, err := os.MkdirTemp("", "revocationbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env, err := devenv.Start(devenv.Options{BinDir: bin, ConfigDir: "config", Kubeconfig: filepath.Join(dir, "kubeconfig")})
	if err != nil {
		return err
	}
	defer env.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := startOperator(ctx, env)
	if err != nil {
		return err
	}
	// client-go's default limiter (5 requests/s) would delay the deletes
	// themselves and be measured as revocation latency.
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "issuing %d keys...\n", n)
	tokens, err := issue(ctx, c, n, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "revoking them one at a time...\n")
	latencies, err := revoke(ctx, c, tokens, addr)
	if err != nil {
		return err
	}
	report(latencies)
	return nil
}

// startOperator runs the controller and the verify server in-process and
// returns the verify server's address.
func startOperator(ctx context.Context, env *devenv.Env) (string, error) {
	port, err := devenv.FreePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := operator.NewOptions()
	o.Serving.MetricsBindAddress, o.Serving.HealthProbeBindAddress = "0", "0"
	o.Verify.BindAddress = addr
	// The benchmark polls unknown keys from one address: the brute-force
	// guard would answer 429 for a while after its burst, and its refill
	// rate, not revocation, would be measured.
	o.Verify.FailureRate = 0
	mgr, err := operator.Build(ctx, env.Config, o, operator.Components{Controller: true, Verify: true})
	if err != nil {
		return "", err
	}
	go func() { _ = mgr.Start(ctx) }()
	return addr, nil
}

// issue creates n keys and waits until each verifies.
func issue(ctx context.Context, c client.Client, n int, addr string) ([]string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "revocation"}}
	if err := c.Create(ctx, ns); err != nil {
		return nil, err
	}
	for i := range n {
		key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: fmt.Sprintf("key-%03d", i)}}
		if err := c.Create(ctx, key); err != nil {
			return nil, err
		}
	}
	tokens := make([]string, n)
	deadline := time.Now().Add(2 * time.Minute)
	for i := range n {
		for {
			s := &corev1.Secret{}
			err := c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: fmt.Sprintf("key-%03d", i)}, s)
			if err == nil && status(addr, string(s.Data[keysv1.SecretKeyField])) == http.StatusOK {
				tokens[i] = string(s.Data[keysv1.SecretKeyField])
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("key-%03d does not verify after 2 minutes", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return tokens, nil
}

// revoke deletes each key and measures the time to the first 401.
func revoke(ctx context.Context, c client.Client, tokens []string, addr string) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(tokens))
	for i, tok := range tokens {
		key := &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: "revocation", Name: fmt.Sprintf("key-%03d", i)}}
		start := time.Now()
		if err := c.Delete(ctx, key); err != nil {
			return nil, err
		}
		for status(addr, tok) != http.StatusUnauthorized {
			if time.Since(start) > 10*time.Second {
				return nil, fmt.Errorf("key-%03d still verifies 10s after its deletion", i)
			}
			time.Sleep(time.Millisecond)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func status(addr, tok string) int {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/auth?namespace=revocation", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func report(d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) string {
		return fmt.Sprintf("%.1f", float64(d[int(p*float64(len(d)-1))].Microseconds())/1000)
	}
	fmt.Printf("| keys | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %s | %s | %s |\n", len(d), q(0.5), q(0.9), q(0.99), q(1))
}
