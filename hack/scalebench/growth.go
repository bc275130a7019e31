package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// verifyCore runs BenchmarkVerify with --keys keys in the index, five
// times, and keeps the median ns/op of the sequential case.
func (b *bench) verifyCore(ctx context.Context) error {
	n := strconv.Itoa(b.keys)
	cmd := exec.CommandContext(ctx, b.goBin, "test", "-run", "^$", "-bench", "^BenchmarkVerify$/^keys="+n+"$",
		"-benchmem", "-count", "5", "./internal/verify/")
	cmd.Env = append(os.Environ(), "APIKEY_BENCH_KEYS="+n)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench BenchmarkVerify: %w\n%s", err, out)
	}
	var ns []float64
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkVerify/keys="+n+"-") || f[3] != "ns/op" {
			continue
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return fmt.Errorf("parse %q: %w", line, err)
		}
		ns = append(ns, v)
	}
	if len(ns) == 0 {
		return fmt.Errorf("no BenchmarkVerify/keys=%s result in:\n%s", n, out)
	}
	slices.Sort(ns)
	b.r.verifyNs = ns[len(ns)/2]
	logf("verify core with %d keys: %.1f ns/op (median of %d)", b.keys, b.r.verifyNs, len(ns))
	return nil
}

// Markers of the growth table in docs/benchmarks.md: one row per number
// of keys, each from the latest run at that size.
const (
	growthBegin = "<!-- growth:begin -->"
	growthEnd   = "<!-- growth:end -->"
)

const growthHeader = `| keys | run (UTC), load at start | bench time | raw keys/s | → Ready keys/s | ratio (≥ 0.8) | writes per key | controller RSS MiB (anon + file) | controller working set MiB | controller KiB per key | API server RSS MiB (anon + file) | API server working set MiB | API server KiB per key | resync | API server start → full index | page p99 ms: plain / sorted / filtered | verify core ns/op | etcd bytes per key |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`

// growthRow is this run's row of the growth table.
func (r *results) growthRow(c config) string {
	raw := (r.rawRate + r.rawRateAfter) / 2
	sec, st, ev := r.perKeyStored(c.keys)
	p99 := func(query string) string {
		for _, l := range r.list {
			if l.hub == bigNamespace && l.query == query {
				return fmt.Sprintf("%.1f", l.p99)
			}
		}
		return "–"
	}
	verify := "–"
	if r.verifyNs > 0 {
		verify = fmt.Sprintf("%.0f", r.verifyNs)
	}
	perKey := func(rss, idle float64) float64 { return (rss - idle) * 1024 / float64(c.keys) }
	return fmt.Sprintf("| %d | %s, %s | %s | %.0f | %.0f | %.2f | %.2f | %.1f (%.1f + %.1f) | %s | %.2f | %.1f (%.1f + %.1f) | %s | %.2f | %.1fs | %.2fs | %s / %s / %s | %s | %.0f |",
		c.keys, r.started.UTC().Format("2006-01-02T15:04Z"), strings.Fields(r.loadStart)[0], time.Since(r.started).Round(time.Second),
		raw, r.readyRate, r.readyRate/raw, total(r.convergeWrites, operatorResources...)/float64(c.keys),
		r.rss10k, r.anon10k, r.file10k, strings.TrimSuffix(mib(r.ws10k), " MiB"), perKey(r.rss10k, r.idleController),
		r.rssAPIServer, r.anonAPIServer, r.fileAPIServer, strings.TrimSuffix(mib(r.wsAPIServer), " MiB"), perKey(r.rssAPIServer, r.idleAPIServer),
		r.resyncSeconds, r.startupSeconds[len(r.startupSeconds)/2],
		p99(""), p99("sort=-created"), p99(listFilter),
		verify, sec+st+ev)
}

// replaceGrowthRow puts row into the growth table of path, replacing the
// row of the same number of keys and keeping the rows in key order.
func replaceGrowthRow(path, row string, keys int) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, growthBegin), strings.Index(s, growthEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s block for the growth table", path, growthBegin, growthEnd)
	}
	rows := map[int]string{keys: row}
	for line := range strings.Lines(s[i+len(growthBegin) : j]) {
		f := strings.Split(line, "|")
		if len(f) < 3 {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(f[1])); err == nil && n != keys {
			rows[n] = strings.TrimRight(line, "\n")
		}
	}
	var b strings.Builder
	b.WriteString(growthBegin + "\n" + growthHeader + "\n")
	for _, n := range slices.Sorted(func(yield func(int) bool) {
		for n := range rows {
			if !yield(n) {
				return
			}
		}
	}) {
		b.WriteString(rows[n] + "\n")
	}
	s = s[:i] + b.String() + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
