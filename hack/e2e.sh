#!/usr/bin/env bash
# make e2e: the end-to-end suite on a real one-node cluster (docs/e2e.md).
#
# 1. builds, once, what the node runs (hack/controlplane.sh --node, helm),
#    the images (operator, pause, test client) and the suite's test binary;
# 2. creates the network namespace apikey-e2e and, inside it, a private
#    mount namespace with tmpfs over the node's state directory and /run;
#    the suite (test/e2e) starts the node there, loads the images, installs
#    the chart and runs every scenario;
# 3. removes everything on the way out, also after a failure or Ctrl-C:
#    every process of the node and its pods, their cgroups, the namespace
#    (and with it every iptables rule and interface), the kernel settings
#    kubelet changes; then checks that nothing is left.
#
# Nothing leaves the namespace: it has no link to the machine's network,
# and every registry is pointed at a dead loopback port.
#
# Env: BIN (default bin/), IMG (operator image name), E2E_FOCUS (a Ginkgo
# focus regexp), E2E_LOGS (component logs; default $BIN/e2e-logs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${BIN:-$root/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
# shellcheck source=versions.env
. "$root/hack/versions.env"
img=${IMG:-ghcr.io/apikey-operator/apikey-operator:v0.1.0}
ns=apikey-e2e
cgroup=apikey-e2e
state=/tmp/apikey-e2e-node
logs=${E2E_LOGS:-$bin/e2e-logs}
# The kernel settings kubelet sets machine-wide; restored afterwards.
sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

if [ "$(id -u)" -ne 0 ]; then
  echo "make e2e needs root: it creates a network namespace, cgroups and mounts (all removed afterwards)" >&2
  exit 1
fi
for tool in ip nsenter unshare iptables-save; do
  command -v "$tool" >/dev/null || { echo "make e2e needs $tool (Debian: iproute2, util-linux, iptables)" >&2; exit 1; }
done

# node_pids: every process of a node of ours, found three ways: in the
# namespace (components, shims), in the cgroup (containers), or naming the
# state directory (anything else it started).
node_pids() {
  { ip netns pids "$ns" 2>/dev/null || true
    find /sys/fs/cgroup/*/"$cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null || true
    pgrep -f "$state" 2>/dev/null || true
  } | sort -un | grep -vx "$$" || true
}

snapshot() { # label: what the machine looks like, for the report
  echo "---- machine $1 the e2e ----"
  echo "ip netns: $(ip netns list | tr '\n' ' ')"
  echo "mounts: $(wc -l < /proc/self/mounts)"
  echo "iptables-save lines: $(iptables-save 2>/dev/null | grep -vc '^#')"
  echo "cgroups named $cgroup: $(find /sys/fs/cgroup -maxdepth 2 -name "$cgroup" | wc -l)"
  echo "node processes: $(node_pids | wc -l)"
}

saved=()
cleanup() {
  set +e
  trap - EXIT INT TERM
  echo "---- e2e cleanup ----"
  # Kill until nothing is left: shims can fork while being killed.
  local pids
  for _ in $(seq 1 50); do
    pids=$(node_pids)
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    sleep 0.2
  done
  [ -n "$(node_pids)" ] && echo "WARNING: processes still running: $(node_pids | tr '\n' ' ')"
  # Cgroups, deepest first.
  find /sys/fs/cgroup/*/"$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
  ip netns delete "$ns" 2>/dev/null
  for i in "${!saved[@]}"; do
    echo "${saved[$i]}" > "/proc/sys/${sysctls[$i]}" 2>/dev/null
  done
  rmdir "$state" 2>/dev/null
  local left=""
  ip netns list | grep -qw "$ns" && left+=" netns"
  [ -n "$(find /sys/fs/cgroup -maxdepth 2 -name "$cgroup")" ] && left+=" cgroups"
  [ -n "$(node_pids)" ] && left+=" processes"
  grep -q "$state" /proc/self/mounts && left+=" mounts"
  if [ -n "$left" ]; then echo "e2e cleanup left:$left behind"; else echo "e2e cleanup: nothing left behind"; fi
  snapshot after
}

# A run killed hard earlier may have left its namespace: clean that first.
if ip netns list | grep -qw "$ns" || [ -n "$(find /sys/fs/cgroup -maxdepth 2 -name "$cgroup")" ]; then
  echo "cleaning up after an earlier e2e run that did not finish..."
  cleanup
fi

echo "---- e2e build (cached in $bin) ----"
"$root/hack/controlplane.sh" --node "$bin"
"$root/hack/helm.sh" "$bin"
go run "$root/hack/image" --e2e --out "$bin/images" --ref "$img" --pause-ref "$PAUSE_IMAGE"
echo "building the e2e suite (go test -c -tags e2e ./test/e2e)..."
(cd "$root" && go test -c -tags e2e -o "$bin/e2e.test" ./test/e2e)

snapshot before
for s in "${sysctls[@]}"; do saved+=("$(cat "/proc/sys/$s")"); done
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

ip netns add "$ns"
mkdir -p "$state" "$logs"
for h in /sys/fs/cgroup/*/; do
  [ -d "$h" ] || continue
  mkdir -p "$h$cgroup" 2>/dev/null || true
done
# A new cpuset cgroup starts empty: give it the parent's CPUs and memory.
if [ -d /sys/fs/cgroup/cpuset/$cgroup ]; then
  cat /sys/fs/cgroup/cpuset/cpuset.cpus > /sys/fs/cgroup/cpuset/$cgroup/cpuset.cpus
  cat /sys/fs/cgroup/cpuset/cpuset.mems > /sys/fs/cgroup/cpuset/$cgroup/cpuset.mems
fi

echo "---- e2e run (component logs: $logs) ----"
start=$SECONDS
# The node's mounts live in a private mount namespace: tmpfs over its state
# and over /run (runc's and the shims' sockets), gone when it ends.
rc=0
nsenter --net="/run/netns/$ns" -- unshare --mount --propagation private -- sh -c '
  mount -t tmpfs -o mode=0755,size=8g apikey-e2e "$0" && mount -t tmpfs -o mode=0755 apikey-e2e-run /run && exec "$@"' \
  "$state" env APIKEY_E2E_ISOLATED=1 E2E_BIN="$bin" E2E_ROOT="$state" E2E_LOGS="$logs" E2E_CGROUP="/$cgroup" \
  E2E_PAUSE_IMAGE="$PAUSE_IMAGE" E2E_IMAGES="$bin/images" E2E_IMAGE="$img" E2E_REPO="$root" \
  "$bin/e2e.test" -test.v -test.timeout 60m -ginkgo.v -ginkgo.timeout 55m ${E2E_FOCUS:+-ginkgo.focus "$E2E_FOCUS"} || rc=$?
echo "e2e suite finished in $((SECONDS - start))s with exit code $rc"
exit "$rc"
