package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/devenv/proc"
)

// operatorProc is an operator process the benchmark started, in its own
// process group so that stopping it stops nothing else.
type operatorProc struct {
	*proc.Process
	started time.Time
	metrics string     // host:port of its Prometheus endpoint
	pprof   string     // host:port of its /debug/pprof; "" unless --profiles
	cgroup  *memCgroup // nil when none could be made (not root)
}

// profileDir, when set (--profiles), is where heap profiles of the
// operator processes are written at each memory figure; the processes
// then serve /debug/pprof on a loopback port.
var profileDir string

func startProc(log io.Writer, bin string, args ...string) (*operatorProc, error) {
	return startProcEnv(log, nil, bin, args...)
}

// startProcEnv starts the process with env added to this one's.
func startProcEnv(log io.Writer, env []string, bin string, args ...string) (*operatorProc, error) {
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args = append(args, "--metrics-bind-address", metrics)
	pprof := ""
	if profileDir != "" {
		if pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--pprof-bind-address", pprof)
	}
	cg, err := newMemCgroup(filepath.Base(bin))
	if err != nil {
		logf("%v: memory figures are RSS only", err)
	}
	name := bin
	if cg != nil {
		name, args = cg.wrap(bin, args)
	}
	started := time.Now()
	p, err := proc.Start(name, args, proc.Options{Out: log, Env: env})
	if err != nil {
		if cg != nil {
			cg.remove()
		}
		return nil, err
	}
	return &operatorProc{Process: p, started: started, metrics: metrics, pprof: pprof, cgroup: cg}, nil
}

// saveProfile writes the process's heap profile (after a GC, as
// /debug/pprof/heap?gc=1 does) and its /proc smaps_rollup to
// --profiles/<name>.pb.gz and <name>.smaps; nothing without --profiles.
func (p *operatorProc) saveProfile(ctx context.Context, name string) {
	if p.pprof == "" {
		return
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p.Pid())); err == nil {
		_ = os.WriteFile(filepath.Join(profileDir, name+".smaps"), b, 0o644)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.pprof+"/debug/pprof/heap?gc=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("heap profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(profileDir, name+".pb.gz"))
	if err != nil {
		logf("heap profile %s: %v", name, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("heap profile %s: %v", name, err)
		return
	}
	logf("heap profile and smaps_rollup: %s", filepath.Join(profileDir, name+".*"))
}

// stop sends SIGTERM to the process's group, SIGKILL after 10 s.
func (p *operatorProc) stop() {
	_ = p.Stop(10 * time.Second)
	if p.cgroup != nil {
		p.cgroup.remove()
	}
}

// workingSet is the process's memory as the kubelet reports a
// container's (memCgroup), in MiB; 0 without a cgroup.
func (p *operatorProc) workingSet() float64 {
	if p.cgroup == nil {
		return 0
	}
	ws, _, _, err := p.cgroup.memory()
	if err != nil {
		logf("read memory cgroup: %v", err)
	}
	return ws
}

func (p *operatorProc) exited() bool { return p.Exited() }

// rssMiB reads VmRSS from /proc/<pid>/status.
func (p *operatorProc) rssMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseFloat(f[0], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// rssSplit reads RssAnon and RssFile (MiB): the memory the process
// allocated, and the pages of its binary and other files it touched.
func (p *operatorProc) rssSplit() (anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		for name, v := range map[string]*float64{"RssAnon:": &anon, "RssFile:": &file} {
			if rest, ok := strings.CutPrefix(line, name); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					*v = kb / 1024
				}
			}
		}
	}
	return anon, file
}

// rssMedian samples RSS n times, a second apart, and returns the median.
// The operator exposes no forced GC, so a median of samples stands in.
func (p *operatorProc) rssMedian(n int) (float64, error) {
	var s []float64
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		v, err := p.rssMiB()
		if err != nil {
			return 0, err
		}
		s = append(s, v)
	}
	slices.Sort(s)
	return s[len(s)/2], nil
}

// scrape reads a process's Prometheus text and sums the samples of name
// whose labels contain every one of want ("k=\"v\"").
func scrape(ctx context.Context, hc *http.Client, url, name string, want ...string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return sumMetric(resp.Body, name, want...)
}

func sumMetric(r io.Reader, name string, want ...string) (float64, error) {
	sum := 0.0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			labels, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for _, w := range want {
			if !strings.Contains(labels, w) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// writeCounts reads kube-apiserver's apiserver_request_total and returns
// the write requests by resource (create, update, patch, delete, apply).
func writeCounts(ctx context.Context, hc *http.Client, host string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, host+"/metrics", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", host, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "apiserver_request_total{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		labels := parseLabels(rest[:end])
		switch labels["verb"] {
		case "CREATE", "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "POST", "PUT":
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			continue
		}
		res := labels["resource"]
		// Reviews store nothing: the secure metrics filter's TokenReviews
		// and SubjectAccessReviews are not writes.
		if res == "tokenreviews" || res == "subjectaccessreviews" {
			continue
		}
		if labels["subresource"] != "" {
			res += "/" + labels["subresource"]
		}
		out[res] += v
	}
	return out, sc.Err()
}

func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		k := s[:eq]
		rest := s[eq+2:]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			break
		}
		m[k] = rest[:end]
		s = strings.TrimPrefix(rest[end+1:], ",")
	}
	return m
}

func diff(after, before map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if x := v - before[k]; x != 0 {
			d[k] = x
		}
	}
	return d
}

func total(m map[string]float64, resources ...string) float64 {
	t := 0.0
	for k, v := range m {
		if len(resources) == 0 || slices.Contains(resources, k) {
			t += v
		}
	}
	return t
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 16}}
}
