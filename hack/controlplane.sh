#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager,
# etcd, kubectl) from Go modules into bin/ once; later calls reuse what is
# there. The usual envtest download of these binaries is not reachable
# here, and a new user should not need it either. envtest finds them through KUBEBUILDER_ASSETS=bin/.
#
# kube-controller-manager is part of it because `make run` runs its garbage
# collector, as a cluster does (a deleted key's Secret goes with the key).
# With --node it also builds what a real node needs (`make e2e`): kubelet,
# kube-scheduler and kube-proxy (in the same `go build` as any missing
# kube-apiserver/kubectl/kube-controller-manager, so the shared packages
# compile once), containerd, ctr and containerd-shim-runc-v2 (in parallel),
# and installs runc, the CNI plugins, iptables, conntrack and socat from
# Debian's packages when they are missing.
#
# Versions: hack/versions.env, the one place they are written.
#
# Usage: hack/controlplane.sh [--node] [BIN_DIR]     (default: bin)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/hack/versions.env"

node=""
if [ "${1:-}" = "--node" ]; then node=1; shift; fi
bin=${1:-$root/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

# The wrapper module must build the version written in versions.env.
if ! grep -q "k8s.io/kubernetes $KUBE_VERSION\$" "$root/hack/controlplane/go.mod"; then
  echo "hack/controlplane/go.mod does not require k8s.io/kubernetes $KUBE_VERSION (hack/versions.env): update it as versions.env says" >&2
  exit 1
fi

built() { # name version: true when bin/name exists and was stamped with version
  [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]
}

# heartbeat label pid: a progress line every minute while a long build runs.
heartbeat() {
  local label=$1 pid=$2 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 60
    kill -0 "$pid" 2>/dev/null && echo "  ... still building $label ($(( (SECONDS - start) / 60 )) min)"
  done
}

# run_build label cmd...: runs a build with progress lines, fails loudly.
run_build() {
  local label=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  heartbeat "$label" "$pid" &
  local hb=$!
  local rc=0
  wait "$pid" || rc=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "building $label failed (exit $rc); the go output above says why" >&2
    return "$rc"
  fi
  echo "built $label in $((SECONDS - start))s"
}

build_etcd() {
  if built etcd "$ETCD_VERSION"; then echo "etcd $ETCD_VERSION: already built in $bin"; return; fi
  echo "building etcd $ETCD_VERSION from Go modules (cold: a few minutes; cached afterwards)..."
  run_build "etcd" bash -c "cd '$root/hack/controlplane/etcd' && go build -trimpath -o '$bin/etcd.tmp' -ldflags '-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION' ."
  mv "$bin/etcd.tmp" "$bin/etcd"
  echo "$ETCD_VERSION" > "$bin/.etcd.version"
}

# All missing Kubernetes binaries in ONE go build: kubelet, the controller
# manager and kube-apiserver share most of their packages.
build_kube() {
  local want=(kube-apiserver kubectl kube-controller-manager) missing=()
  [ -n "$node" ] && want+=(kubelet kube-scheduler kube-proxy)
  for b in "${want[@]}"; do built "$b" "$KUBE_VERSION" || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then echo "Kubernetes $KUBE_VERSION (${want[*]}): already built in $bin"; return; fi
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  local out pkgs=()
  out=$(mktemp -d "$bin/.kube-build.XXXXXX")
  for b in "${missing[@]}"; do pkgs+=("./$b"); done
  echo "building ${missing[*]} $KUBE_VERSION from Go modules in one go build (cold: 10-25 min on 2 cores; cached afterwards)..."
  run_build "${missing[*]}" bash -c "cd '$root/hack/controlplane' && CGO_ENABLED=0 go build -trimpath -o '$out/' -ldflags '$ldflags' ${pkgs[*]}" || { rm -rf "$out"; return 1; }
  for b in "${missing[@]}"; do
    mv "$out/$b" "$bin/$b"
    echo "$KUBE_VERSION" > "$bin/.$b.version"
  done
  rm -rf "$out"
}

build_containerd() {
  local parts=(containerd ctr containerd-shim-runc-v2) missing=()
  for b in "${parts[@]}"; do built "$b" "$CONTAINERD_VERSION" || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then echo "containerd $CONTAINERD_VERSION: already built in $bin"; return; fi
  echo "building containerd, ctr, containerd-shim-runc-v2 $CONTAINERD_VERSION from Go modules (cold: about 5 min)..."
  local out pkgs=()
  out=$(mktemp -d "$bin/.containerd-build.XXXXXX")
  for b in "${missing[@]}"; do pkgs+=("github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION"); done
  # Static, without the storage drivers that need cgo or kernel headers.
  run_build "containerd" env GOBIN="$out" CGO_ENABLED=0 go install -trimpath \
    -tags 'no_btrfs no_devmapper no_zfs no_aufs urfave_cli_no_docs' \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" "${pkgs[@]}" || { rm -rf "$out"; return 1; }
  for b in "${missing[@]}"; do
    mv "$out/$b" "$bin/$b"
    echo "$CONTAINERD_VERSION" > "$bin/.$b.version"
  done
  rm -rf "$out"
}

# Debian packages the node runs: runc, CNI plugins, and kube-proxy's tools.
node_packages() {
  local need=()
  command -v runc >/dev/null 2>&1 || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
  command -v socat >/dev/null 2>&1 || need+=(socat)
  [ ${#need[@]} -eq 0 ] && { echo "node packages (runc, CNI plugins, iptables, conntrack, socat): present"; return; }
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages ${need[*]}: run as root, or apt-get install -y ${need[*]}" >&2
    return 1
  fi
  echo "installing ${need[*]} from Debian packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
}

if [ -n "$node" ]; then
  node_packages
  # containerd shares nothing with Kubernetes: build it beside the rest.
  build_containerd > >(sed 's/^/[containerd] /') 2>&1 &
  cpid=$!
fi
build_etcd
build_kube
if [ -n "$node" ]; then
  wait "$cpid" || { echo "containerd build failed (see [containerd] lines above)" >&2; exit 1; }
fi
echo "control plane ready in $bin: $("$bin/kube-apiserver" --version), etcd $("$bin/etcd" --version | head -1 | awk '{print $3}'), kubectl $("$bin/kubectl" version --client -o json | grep -m1 gitVersion | tr -d ' ",' | cut -d: -f2)"
[ -n "$node" ] && echo "node ready in $bin: kubelet $("$bin/kubelet" --version | awk '{print $2}'), containerd $("$bin/containerd" --version | awk '{print $3}'), runc $(runc --version | head -1 | awk '{print $3}')"
exit 0
