// Command scalebench measures the operator at --keys keys (10,000 by
// default) against the local control plane (bin/), in one run:
//
//  1. raw limit: the rate at which this kube-apiserver + etcd takes the
//     writes the controller makes per key (a Secret create and an ApiKey
//     status patch), from a plain client with as many workers as the
//     controller;
//  2. 10,000 ApiKeys in 100 namespaces, all there when the controller
//     starts: time until all are Ready, and the ratio to (1);
//  3. steady state: API writes per minute with nothing changing, and a
//     full resync (a controller restart) with its duration and writes;
//  4. the controller's RSS with 10,000 keys, and after 10,000 unrelated
//     Secrets are added;
//  5. startup of `apikey-operator apiserver`: process start to the verify
//     index holding all 10,000 keys (its apikey_keys metric);
//  6. hub-dialect list over HTTPS with an API key: a page of 20 among
//     10,000 keys in one namespace and in one tenant of 100;
//  7. the bytes etcd holds per key for what the operator adds (Secret,
//     status, events), read from etcd itself;
//  8. the verify core's ns/op with as many keys in its index.
//
// The controller and the API server run as separate processes of the
// binary given with --operator. Each run rewrites its row of the growth
// table in docs/benchmarks.md (<!-- growth:begin --> ... end), and with
// 10,000 keys the detailed section between <!-- scale:begin --> and
// <!-- scale:end -->. A benchmark: it reports, it does not pass or fail
// on a number.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/apikey-operator/apikey-operator/internal/devenv"
	"github.com/apikey-operator/apikey-operator/internal/operator"
)

type config struct {
	bin, operator, out string
	keys, namespaces   int
	rawKeys            int
	workers            int
	qps                float64
	burst              int
	steady             time.Duration
	listRequests       int
	extra              []string
	goBin              string
	detail             bool
	sweep              []int
	gcVariants         []string
}

func main() {
	c := config{}
	flag.StringVar(&c.bin, "bin", "bin", "Directory with kube-apiserver, etcd and kubectl.")
	flag.StringVar(&c.operator, "operator", "bin/apikey-operator", "The apikey-operator binary to measure.")
	flag.StringVar(&c.out, "out", "docs/benchmarks.md", "File whose scale section is rewritten; \"\" prints the section only.")
	flag.IntVar(&c.keys, "keys", 10000, "ApiKeys to create across --namespaces.")
	flag.IntVar(&c.namespaces, "namespaces", 100, "Namespaces the keys are spread over.")
	flag.IntVar(&c.rawKeys, "raw-keys", 2000, "Keys written by the plain client to measure the raw limit.")
	flag.IntVar(&c.workers, "workers", 0, "Parallel workers of the plain client and --max-concurrent-reconciles of the controller; 0: the controller's default.")
	flag.Float64Var(&c.qps, "kube-api-qps", 0, "--kube-api-qps of the controller; 0: its default.")
	flag.IntVar(&c.burst, "kube-api-burst", 0, "--kube-api-burst of the controller; 0: its default.")
	flag.DurationVar(&c.steady, "steady", time.Minute, "How long writes are counted with nothing changing.")
	flag.IntVar(&c.listRequests, "list-requests", 1000, "Requests per REST list case.")
	extra := flag.String("controller-args", "", "More controller flags, space-separated.")
	flag.StringVar(&c.goBin, "go", "go", "The go command, to run the verify core's benchmark with --keys keys; \"\" skips it.")
	detailFlag := flag.String("detail", "auto", "Rewrite the detailed scale section of --out too: true, false, or auto (only with 10000 keys, the size its targets name). The growth table's row for --keys is always rewritten.")
	variants := flag.String("gc-variants", "GOGC=100,GOMEMLIMIT=100MiB", "Go GC environments (the binary runs at GOGC 50 unless told otherwise; GOGC=100 is Go's default), comma-separated, each measured on one more fresh controller process (RSS, resync time); \"\" for none.")
	sweep := flag.String("raw-sweep", "1,8,16", "More worker counts to measure the raw limit with (half --raw-keys each); \"\" for none.")
	flag.StringVar(&profileDir, "profiles", "", "Directory to write heap profiles and /proc smaps_rollup of the controller and API server into, at each memory figure (needs an operator binary with --pprof-bind-address); \"\" for none.")
	flag.Parse()
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "scalebench:", err)
			os.Exit(2)
		}
	}
	c.extra = strings.Fields(*extra)
	switch *detailFlag {
	case "auto":
		c.detail = c.keys == 10000
	case "true", "false":
		c.detail = *detailFlag == "true"
	default:
		fmt.Fprintln(os.Stderr, "scalebench: --detail: true, false or auto")
		os.Exit(2)
	}
	if c.keys < 1 || c.namespaces < 1 || c.keys%c.namespaces != 0 {
		fmt.Fprintf(os.Stderr, "scalebench: --keys (%d) must be a positive multiple of --namespaces (%d)\n", c.keys, c.namespaces)
		os.Exit(2)
	}
	c.gcVariants = strings.FieldsFunc(*variants, func(r rune) bool { return r == ',' })
	for _, f := range strings.FieldsFunc(*sweep, func(r rune) bool { return r == ',' }) {
		w, err := strconv.Atoi(f)
		if err != nil || w < 1 {
			fmt.Fprintln(os.Stderr, "scalebench: --raw-sweep: worker counts, comma-separated")
			os.Exit(2)
		}
		c.sweep = append(c.sweep, w)
	}
	if c.workers == 0 {
		c.workers = operator.NewOptions().Controller.MaxConcurrentReconciles
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

// bench holds what every phase uses.
type bench struct {
	config
	env      *devenv.Env
	dir      string
	c        client.Client // unthrottled admin client
	kube     *http.Client  // admin HTTP client of kube-apiserver (/metrics)
	scraper  *http.Client  // reads the operator processes' secure metrics
	kubeHost string
	log      *os.File // operator processes' output
	r        results
	tlsConf  *tls.Config
	// apiserver is the API server process the REST list runs against,
	// serving HTTPS on secure.
	apiserver *operatorProc
	secure    string
	// webhookPort is the controller's admission webhook port; one
	// controller process runs at a time.
	webhookPort string
}

func run(c config) error {
	dir, err := os.MkdirTemp("", "scalebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{config: c, dir: dir}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, b.webhookPort, _ = strings.Cut(addr, ":")
	b.r.loadStart = loadavg()
	b.r.started = time.Now()
	logf("starting etcd and kube-apiserver from %s", c.bin)
	env, err := devenv.Start(devenv.Options{BinDir: c.bin, ConfigDir: "config", Kubeconfig: filepath.Join(dir, "kubeconfig"),
		EtcdQuotaBytes: 8 << 30})
	if err != nil {
		return err
	}
	defer env.Stop()
	b.env = env
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side limit: measure the server
	if b.c, err = client.New(cfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		return err
	}
	// kube-apiserver's /metrics, read as the kubeconfig's admin.
	admin, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		return err
	}
	if b.kube, err = rest.HTTPClientFor(admin); err != nil {
		return err
	}
	b.kubeHost = admin.Host
	if b.log, err = os.Create(filepath.Join(dir, "operator.log")); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.Certs.ServingCAPEM)
	b.tlsConf = &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	ctx := context.Background()
	if b.scraper, err = newScraper(ctx, b.c, "config"); err != nil {
		return err
	}

	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"raw limit", b.rawLimit},
		{"RSS with no keys", b.idle},
		{"create keys", b.createKeys},
		{"reconcile throughput, steady state, memory, resync", b.controller},
		{"raw limit again", b.rawAgain},
		{"startup", b.startup},
		{"REST list", b.restList},
		{"verify core", b.verifyCoreStep},
	}
	defer func() {
		if b.apiserver != nil {
			b.apiserver.stop()
		}
	}()
	for _, s := range steps {
		logf("== %s", s.name)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w (operator log: %s)", s.name, err, tail(b.log.Name(), 20))
		}
	}
	b.r.loadEnd = loadavg()
	section := b.r.markdown(c)
	row := b.r.growthRow(c)
	if c.out == "" {
		fmt.Print(section)
		fmt.Println(growthHeader)
		fmt.Println(row)
		return nil
	}
	if err := replaceGrowthRow(c.out, row, c.keys); err != nil {
		return err
	}
	logf("wrote the %d-key row of the growth table in %s", c.keys, c.out)
	if !c.detail {
		fmt.Print(section)
		return nil
	}
	if err := replaceSection(c.out, section); err != nil {
		return err
	}
	logf("wrote the scale section of %s", c.out)
	return nil
}

// verifyCoreStep stops the API server first: the benchmark gets the
// machine to itself, as far as this run goes.
func (b *bench) verifyCoreStep(ctx context.Context) error {
	if b.apiserver != nil {
		b.apiserver.stop()
	}
	if b.goBin == "" {
		return nil
	}
	return b.verifyCore(ctx)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}
