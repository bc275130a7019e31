// Command connbench floods the verify port with idle keep-alive
// connections from several addresses while a well-behaved client from another
// address keeps verifying a key, each request on a new connection, and
// reports that client's p99 and errors, whether the probes kept
// answering, and the operator process's open files and RSS before,
// during and after the flood — once with the connection limits off and
// once with the defaults (make bench-connections; docs/benchmarks.md). A
// benchmark: it reports, it does not pass or fail.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

func main() {
	bin := flag.String("bin", "bin", "Directory with kube-apiserver, etcd and kubectl.")
	flood := flag.Int("flood", 0, "Idle connections the flooding addresses try to hold in all; more than --operator-file-limit, so that with the limits off the flood reaches the operator's file limit, as in issue 20. 0: 26,000, or this process's hard file limit less 2,000 when it cannot raise that.")
	sources := flag.Int("sources", 4, "Flooding source addresses (127.0.0.10 on): one address has about 28,000 ephemeral ports towards one port.")
	hold := flag.Duration("hold", 20*time.Second, "How long the flood is held while the good client measures.")
	fileLimit := flag.Uint64("operator-file-limit", 0, "Open-file limit (soft and hard) given to the operator process. 0: 21,000, as the report's pod had, or three quarters of --flood when this process cannot raise its hard file limit that far.")
	flag.Parse()
	crlog.SetLogger(logr.Discard())
	*flood, *fileLimit = floodSize(*flood, *fileLimit)
	if err := run(*bin, *flood, *sources, *fileLimit, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "connbench:", err)
		os.Exit(1)
	}
}

// floodSize raises this process's file limit so that it can hold the whole
// flood, and fits the flood and the operator's limit under the hard limit
// when it cannot be raised (a container without CAP_SYS_RESOURCE): the
// operator's limit must stay below the flood for the limits-off run to
// reach it, and raising the operator's hard limit needs the same privilege.
func floodSize(flood int, fileLimit uint64) (int, uint64) {
	want := flood
	if want == 0 {
		want = 26000
	}
	own := syscall.Rlimit{Cur: uint64(want) + 10000, Max: uint64(want) + 10000}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &own); err != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own)
		own.Cur = own.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &own)
		if flood == 0 {
			want = int(own.Max) - 2000
		}
		fmt.Fprintf(os.Stderr, "connbench: cannot raise its own file limit past the hard limit %d (%v); flood %d\n", own.Max, err, want)
	}
	if fileLimit == 0 {
		fileLimit = 21000
		if uint64(want) < fileLimit*5/4 {
			fileLimit = uint64(want) * 3 / 4
		}
	}
	return want, fileLimit
}

type result struct {
	name             string
	held, refused    int
	requests, errors int
	p50, p99         time.Duration
	probeFailures    int
	fds, rss         [3]int // before, peak during the flood, after (KiB for RSS)
}

func run(bin string, flood, sources int, fileLimit uint64, hold time.Duration) error {
	started := time.Now()
	dir, err := os.MkdirTemp("", "connbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "building the operator binary...")
	exe := filepath.Join(dir, "apikey-operator")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	fmt.Fprintln(os.Stderr, "starting etcd and kube-apiserver...")
	env, err := devenv.Start(devenv.Options{BinDir: bin, ConfigDir: "config", Kubeconfig: filepath.Join(dir, "kubeconfig")})
	if err != nil {
		return err
	}
	defer env.Stop()
	c, err := client.New(env.Config, client.Options{Scheme: devenv.Scheme()})
	if err != nil {
		return err
	}
	ctx := context.Background()
	const ns = "connbench"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	var results []result
	for _, sc := range []struct {
		name string
		args []string
	}{
		{"limits off (`--max-connections=0 --max-connections-per-address=0`, idle timeout 2m as before)", []string{"--max-connections=0", "--max-connections-per-address=0", "--connection-idle-timeout=2m"}},
		{"defaults (10,000 per listener, 512 per address, idle 30s)", nil},
	} {
		fmt.Fprintf(os.Stderr, "scenario: %s\n", sc.name)
		r, err := scenario(ctx, env, c, exe, dir, ns, sc.args, flood, sources, fileLimit, hold)
		if err != nil {
			return err
		}
		r.name = sc.name
		results = append(results, r)
	}
	var b strings.Builder
	report(&b, results, flood, sources, fileLimit, hold, started)
	fmt.Print(b.String())
	return writeSection("docs/benchmarks.md", b.String())
}

// writeSection puts the report between docs/benchmarks.md's connections
// markers (hack/bench.sh keeps them), or at its end.
func writeSection(path, section string) error {
	const begin, end = "<!-- connections:begin -->", "<!-- connections:end -->"
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	block := begin + "\n" + section + end + "\n"
	text := string(old)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end)+1:]
	} else {
		text = strings.TrimRight(text, "\n") + "\n\n" + block
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

func scenario(ctx context.Context, env *devenv.Env, c client.Client, exe, dir, ns string, args []string, flood, sources int, fileLimit uint64, hold time.Duration) (result, error) {
	var r result
	verifyPort, probePort, securePort := freePort(), freePort(), freePort()
	log, err := os.Create(filepath.Join(dir, "operator.log"))
	if err != nil {
		return r, err
	}
	defer log.Close()
	p, err := proc.Start(exe, append([]string{"all", "--kubeconfig", env.Kubeconfig, "--disable-webhooks",
		"--watch-namespaces", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probePort),
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(securePort),
		"--tls-cert-file", env.Certs.ServingCert, "--tls-private-key-file", env.Certs.ServingKey,
		"--verify-bind-address", fmt.Sprintf("127.0.0.1:%d", verifyPort), "--ext-authz-bind-address", "0",
		"--verify-failure-rate", "0"}, args...), proc.Options{Out: log})
	if err != nil {
		return r, err
	}
	defer p.Stop(10 * time.Second)
	pid := p.Pid()
	lim := unix.Rlimit{Cur: fileLimit, Max: fileLimit}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		return r, fmt.Errorf("set the operator's file limit to %d: %w", fileLimit, err)
	}
	name := fmt.Sprintf("k%d", time.Now().UnixNano())
	if err := c.Create(ctx, &keysv1.ApiKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		return r, err
	}
	tok, err := waitToken(ctx, c, ns, name)
	if err != nil {
		return r, err
	}
	verifyURL := fmt.Sprintf("http://127.0.0.1:%d/v1/auth?namespace=%s", verifyPort, ns)
	probeURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	good := goodClient()
	if err := waitStatus(good, verifyURL, tok, 200, 60*time.Second); err != nil {
		return r, err
	}
	time.Sleep(2 * time.Second)
	r.fds[0], r.rss[0] = usage(pid)

	// The good client, the probe and the sampler run from before the flood
	// to the end of the hold: with the limits off the harm happens while
	// the flood is being opened, when the operator reaches its file limit.
	var (
		lat     []time.Duration
		mu      sync.Mutex
		errs    atomic.Int64
		probeKO atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	every := func(d time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					f()
				}
			}
		}()
	}
	every(20*time.Millisecond, func() { // 50 verifications a second, each on a new connection
		start := time.Now()
		st, err := get(good, verifyURL, tok)
		d := time.Since(start)
		if err != nil || st != 200 {
			errs.Add(1)
			return
		}
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	})
	pc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	every(time.Second, func() { // the probe, once a second
		if st, err := get(pc, probeURL, ""); err != nil || st != 200 {
			probeKO.Add(1)
		}
	})
	every(250*time.Millisecond, func() { // peak files and RSS
		fds, rss := usage(pid)
		mu.Lock()
		r.fds[1], r.rss[1] = max(r.fds[1], fds), max(r.rss[1], rss)
		mu.Unlock()
	})

	fmt.Fprintln(os.Stderr, "  flooding...")
	var conns []net.Conn
	var refused int
	for i := range sources {
		held, ko := floodFrom(net.IPv4(127, 0, 0, byte(10+i)), fmt.Sprintf("127.0.0.1:%d", verifyPort), flood/sources)
		conns, refused = append(conns, held...), refused+ko
	}
	r.held, r.refused = len(conns), refused
	fmt.Fprintf(os.Stderr, "  holding %d connections (%d closed by the server or failed) for %s\n", r.held, r.refused, hold)
	time.Sleep(hold)
	close(stop)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	fmt.Fprintln(os.Stderr, "  flood closed; waiting 10s")
	time.Sleep(10 * time.Second)
	r.fds[2], r.rss[2] = usage(pid)
	slices.Sort(lat)
	r.requests, r.errors, r.probeFailures = len(lat)+int(errs.Load()), int(errs.Load()), int(probeKO.Load())
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r, nil
}

// floodFrom opens up to n connections from source, sends one keep-alive
// request on each and keeps the ones whose answer came back open.
func floodFrom(source net.IP, addr string, n int) ([]net.Conn, int) {
	var (
		mu      sync.Mutex
		held    []net.Conn
		refused atomic.Int64
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	req := []byte("GET /v1/auth HTTP/1.1\r\nHost: x\r\n\r\n")
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: source}, Timeout: 5 * time.Second}
			buf := make([]byte, 4096)
			for next.Add(1) <= int64(n) {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					refused.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(req); err != nil {
					c.Close()
					refused.Add(1)
					continue
				}
				if _, err := c.Read(buf); err != nil {
					c.Close()
					refused.Add(1)
					continue
				}
				_ = c.SetDeadline(time.Time{})
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return held, int(refused.Load())
}

// goodClient sends from 127.0.0.3, a new connection per request.
func goodClient() *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func get(c *http.Client, url, tok string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func waitStatus(c *http.Client, url, tok string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := get(c, url, tok)
		if err == nil && st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s answered %d (%v), not %d, within %s", url, st, err, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitToken(ctx context.Context, c client.Client, ns, name string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s := &corev1.Secret{}
		key := &keysv1.ApiKey{}
		if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s) == nil &&
			c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, key) == nil && key.Status.Hash != "" {
			return string(s.Data[keysv1.SecretKeyField]), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("key %s/%s not issued within 60s", ns, name)
}

// usage is the process's open files and RSS (KiB).
func usage(pid int) (int, int) {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	rss := 0
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
	}
	return len(fds), rss
}

func freePort() int {
	p, err := devenv.FreePort()
	if err != nil {
		panic(err)
	}
	return p
}

func report(w io.Writer, rs []result, flood, sources int, fileLimit uint64, hold time.Duration, started time.Time) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "## Connection flood (issue 20)\n\nWritten by `make bench-connections` (hack/connbench) on %s, in %s; load average when written: %s.\n\n",
		started.UTC().Format("2006-01-02T15:04Z"), time.Since(started).Round(time.Second), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(w, "%d addresses (127.0.0.10 on) open up to %d keep-alive connections in all to the verify port, one request each, and hold them %s; the operator's file limit is %d (soft and hard), so with the limits off the flood reaches it. From before the flood starts to the end of the hold, another address (127.0.0.3) verifies a key 50 times a second, each on a new connection (5 s timeout), and the readiness probe is asked once a second. Process figures from /proc: open files and RSS before, at their peak (sampled every 250 ms) and 10 s after the flood closed. \"Held\" counts the connections that got an answer, which the flooder then keeps open; what the server itself holds is the open-files column.\n\n", sources, flood, hold, fileLimit)
	fmt.Fprintln(w, "| scenario | flood connections held | closed at once or failed | good client: requests | errors | p50 | p99 | probe failures | open files before / peak / after | RSS MiB before / peak / after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s | %s | %d | %d / %d / %d | %.1f / %.1f / %.1f |\n", r.name, r.held, r.refused, r.requests, r.errors,
			r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.probeFailures, r.fds[0], r.fds[1], r.fds[2],
			float64(r.rss[0])/1024, float64(r.rss[1])/1024, float64(r.rss[2])/1024)
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		fmt.Fprintf(w, "- %s: the operator's open files peaked at %d of its %d, %d of the good client's %d verifications failed and %d readiness probes; RSS came back to %.0f %% of the way from peak to start.\n",
			strings.SplitN(r.name, " (", 2)[0], r.fds[1], fileLimit, r.errors, r.requests, r.probeFailures, 100*float64(r.rss[1]-r.rss[2])/float64(max(1, r.rss[1]-r.rss[0])))
	}
}
