// Package memlimit holds the Go runtime's memory settings of every
// operator process: the GC target (GCPercent, unless GOGC is set) and the
// soft memory limit from the container's memory limit, which the chart
// and config/ pass in through the downward API (resources.limits.memory
// → MEMORY_LIMIT, in bytes).
//
// GOMEMLIMIT itself cannot be set from the downward API to anything but
// the whole limit, and the whole limit is too much: the soft limit
// governs only the Go runtime's memory (heap, stacks, runtime data),
// while the container's limit also counts the pages of the binary the
// process has touched (55-60 MiB of file-backed RSS, docs/benchmarks.md)
// and what cgo or the kernel hold for it. So the limit here is a share of
// the container's: the GC works harder as the heap nears it, before the
// kernel's OOM killer would act, and does nothing extra below it.
package memlimit

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// EnvVar holds the container's memory limit in bytes (the downward API's
// resourceFieldRef limits.memory with the default divisor).
const EnvVar = "MEMORY_LIMIT"

// Share is the part of the container's limit given to the Go runtime.
const Share = 0.8

// Soft returns the soft limit for getenv's environment, in bytes, and
// why; 0 when none is to be set: GOMEMLIMIT is set (the runtime has read
// it already and it wins), or MEMORY_LIMIT is absent. A MEMORY_LIMIT that
// is not a positive number of bytes is an error, so that a chart mistake
// shows instead of a silent default.
func Soft(getenv func(string) string) (int64, string, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v + " set", nil
	}
	v := strings.TrimSpace(getenv(EnvVar))
	if v == "" {
		return 0, EnvVar + " not set", nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, "", fmt.Errorf("%s=%q: want the container's memory limit in bytes", EnvVar, v)
	}
	// No container limit: the downward API then gives the node's
	// allocatable memory, and a share of it is harmless.
	soft := int64(math.Floor(float64(n) * Share))
	return soft, fmt.Sprintf("%.0f%% of %s=%d", Share*100, EnvVar, n), nil
}

// GCPercent is the GC target of every operator process unless GOGC says
// otherwise: the heap may grow by half of what survived the last
// collection, not by all of it (Go's default of 100). What the operator
// holds is its informers' caches, which survive every collection, so at
// 100 the heap goal is twice the caches; at 50, 1.5 times. Measured at
// 10,000 keys (docs/benchmarks.md, rows 4b and 4c): a fresh controller
// holds 127.8 MiB against 152.6, for a resync 0.1 s slower. The
// manifests set it through GOGC before; the binary is now its one home.
const GCPercent = 50

// GC sets the runtime's GC target to GCPercent unless GOGC is set (the
// runtime has read it already and it wins), and returns what it set (0:
// nothing) and why.
func GC(getenv func(string) string) (int, string) {
	if v := getenv("GOGC"); v != "" {
		return 0, "GOGC=" + v + " set"
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent, "the operator's default"
}

// Apply sets the runtime's soft memory limit as Soft says and returns
// what it set (0: nothing) and why.
func Apply(getenv func(string) string) (int64, string, error) {
	soft, why, err := Soft(getenv)
	if err != nil || soft == 0 {
		return 0, why, err
	}
	debug.SetMemoryLimit(soft)
	return soft, why, nil
}
