package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// memCgroup is a memory cgroup of its own for one operator process, as a
// pod's container has one: the kubelet (through cAdvisor) reports the
// container's memory as the cgroup's working set, usage less the file
// pages on the inactive list, and evicts and OOM-kills by the cgroup's
// charge, not by the process's RSS. The two differ by the executable's
// pages: RSS counts every page of the binary the process maps, the
// cgroup only the page cache it was first to read in (containerd, which
// unpacked the image, was first on a node; here, the go build), and a
// file page stays reclaimable under the container's limit.
type memCgroup struct {
	dir string
	v2  bool
}

var cgroupSeq atomic.Int64

// newMemCgroup makes an empty memory cgroup under the root hierarchy
// (cgroup v2 or v1's memory controller). It needs root; an error means
// the figures are RSS only.
func newMemCgroup(name string) (*memCgroup, error) {
	leaf := fmt.Sprintf("scalebench-%d-%s-%d", os.Getpid(), name, cgroupSeq.Add(1))
	cg := &memCgroup{}
	switch {
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		cg.dir, cg.v2 = filepath.Join("/sys/fs/cgroup", leaf), true
	case fileExists("/sys/fs/cgroup/memory/memory.usage_in_bytes"):
		cg.dir = filepath.Join("/sys/fs/cgroup/memory", leaf)
	default:
		return nil, errors.New("no cgroup v2 hierarchy and no v1 memory controller under /sys/fs/cgroup")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("make memory cgroup (needs root): %w", err)
	}
	return cg, nil
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// wrap returns the command that starts bin with args inside the cgroup:
// the shell moves itself in before exec, so the process's first page is
// charged there, with the same PID.
func (cg *memCgroup) wrap(bin string, args []string) (string, []string) {
	script := `echo $$ > "$0/cgroup.procs" && exec "$@"`
	return "/bin/sh", append([]string{"-c", script, cg.dir, bin}, args...)
}

// memory reads the cgroup's charge (MiB): its working set as cAdvisor
// computes it, and the anonymous and file parts of the charge.
func (cg *memCgroup) memory() (workingSet, anon, file float64, err error) {
	usageFile, stat := "memory.usage_in_bytes", map[string]string{"anon": "total_rss", "file": "total_cache", "inactive": "total_inactive_file"}
	if cg.v2 {
		usageFile, stat = "memory.current", map[string]string{"anon": "anon", "file": "file", "inactive": "inactive_file"}
	}
	usage, err := readUint(filepath.Join(cg.dir, usageFile))
	if err != nil {
		return 0, 0, 0, err
	}
	b, err := os.ReadFile(filepath.Join(cg.dir, "memory.stat"))
	if err != nil {
		return 0, 0, 0, err
	}
	v := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		for k, name := range stat {
			if len(f) == 2 && f[0] == name {
				n, _ := strconv.ParseFloat(f[1], 64)
				v[k] = n
			}
		}
	}
	ws := max(float64(usage)-v["inactive"], 0)
	return ws / (1 << 20), v["anon"] / (1 << 20), v["file"] / (1 << 20), nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// remove deletes the cgroup once its process has gone (a cgroup with a
// task cannot be removed).
func (cg *memCgroup) remove() {
	for range 50 {
		if err := os.Remove(cg.dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("memory cgroup %s left behind: remove it with rmdir", cg.dir)
}
