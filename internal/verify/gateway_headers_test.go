package verify_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	. "github.com/apikey-operator/apikey-operator/internal/verify"
)

// TestGatewaysPassRateLimitHeaders runs the real NGINX and Caddy of
// Debian's packages with docs/gateways.md's configurations (the same
// templates as the gateways suite) in front of a verify server, and
// checks what a client gets: RateLimit-Policy and RateLimit on a 200,
// 429 with Retry-After and both on a refusal for the key's limit (NGINX's
// auth_request would make it a 500), and neither field for a key without
// a rate limit. It needs no kube-apiserver: the server verifies from an
// index.
func TestGatewaysPassRateLimitHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs NGINX and Caddy: not under -short")
	}
	for _, bin := range []string{"nginx", "caddy"} {
		if _, err := exec.LookPath(bin); err != nil {
			out, err := exec.Command(filepath.Join("..", "..", "hack", "gateways-install.sh")).CombinedOutput()
			if err != nil {
				t.Fatalf("%s\n%s", installHint, out)
			}
		}
	}
	limited, plain := mintToken(t), mintToken(t)
	ix := NewIndex()
	ix.SetKey(testkit.IssuedKey("team", "limited", limited, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
		k.Spec.Permissions = []keysv1.Permission{"invoices:read"}
		k.Spec.RateLimit = &keysv1.RateLimitSpec{RequestsPerSecond: 1, Burst: 2}
	}))
	ix.SetKey(testkit.IssuedKey("team", "plain", plain, time.Now().Add(time.Hour), func(k *keysv1.ApiKey) {
		k.Spec.Permissions = []keysv1.Permission{"invoices:read"}
	}))
	o := NewOptions()
	o.TrustedProxies = []string{"127.0.0.1"}
	log := logr.Discard()
	srv, err := NewServerFromIndex(o, ix, Deps{Registerer: prometheus.NewRegistry(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	verifyLn := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, verifyLn); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	backend := listen(t)
	go func() {
		_ = http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }))
	}()
	t.Cleanup(func() { backend.Close() })

	for _, gw := range []struct {
		name, file, text string
		args             func(dir, conf string) []string
	}{
		{"NGINX", "nginx.conf", nginxConf, func(dir, conf string) []string {
			return []string{"nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", conf}
		}},
		{"Caddy", "Caddyfile", caddyfile, func(_, conf string) []string {
			return []string{"caddy", "run", "--config", conf, "--adapter", "caddyfile"}
		}},
	} {
		t.Run(gw.name, func(t *testing.T) {
			dir := t.TempDir()
			// NGINX's workers run as another user: they must reach the
			// cache directory inside the test's private temp dir.
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o711); err != nil {
					t.Fatal(err)
				}
			}
			addr := freeAddress(t)
			var conf strings.Builder
			if err := template.Must(template.New(gw.file).Parse(gw.text)).Execute(&conf, map[string]string{
				"Dir": dir, "Listen": addr, "Backend": backend.Addr().String(), "Verify": verifyLn.Addr().String(), "Namespace": "team",
			}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, gw.file)
			if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			runGateway(t, dir, addr, gw.args(dir, path)...)
			base := "http://" + addr

			status, h := clientGet(t, base, plain)
			if status != 200 || len(h.Values(PolicyHeader)) != 0 || len(h.Values(RateLimitHeader)) != 0 {
				t.Fatalf("a key without a rate limit: %d, headers %v", status, h)
			}
			status, h = clientGet(t, base, limited)
			if status != 200 || h.Get(PolicyHeader) != `"rate";q=2;w=2` || !regexp.MustCompile(`^"rate";r=[01];t=[0-9]+$`).MatchString(h.Get(RateLimitHeader)) || h.Get(RetryAfterHeader) != "" {
				t.Fatalf("the client of a limited key got %d with %s %q, %s %q, %s %q", status,
					PolicyHeader, h.Get(PolicyHeader), RateLimitHeader, h.Get(RateLimitHeader), RetryAfterHeader, h.Get(RetryAfterHeader))
			}
			// Burst 2 at 1/s: a few more at once are refused.
			for range 10 {
				if status, h = clientGet(t, base, limited); status != 200 {
					break
				}
			}
			if status != 429 || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(h.Get(RetryAfterHeader)) ||
				!regexp.MustCompile(`^"rate";r=0;t=[1-9][0-9]*$`).MatchString(h.Get(RateLimitHeader)) || h.Get(PolicyHeader) != `"rate";q=2;w=2` {
				t.Fatalf("over the limit the client got %d with %v; want 429 with Retry-After, RateLimit and RateLimit-Policy", status, h)
			}
			// Wait out the limit (one request a second), so the other
			// gateway starts with a full bucket.
			time.Sleep(2500 * time.Millisecond)
		})
	}
}

func mintToken(t *testing.T) string {
	t.Helper()
	tok, err := token.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func freeAddress(t *testing.T) string {
	t.Helper()
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().String()
}

// runGateway starts a gateway in its own process group until the test
// ends, and waits until it listens on addr.
func runGateway(t *testing.T, dir, addr string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("%s output:\n%s%s", args[0], out.String(), errLog)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening: %v\n%s", args[0], err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clientGet sends a client's request with a key through a gateway and
// returns the status and the headers the client gets.
func clientGet(t *testing.T, base, tok string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/invoices", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}
