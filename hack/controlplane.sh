#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, etcd, kubectl) from Go
# modules into bin/ once; later calls reuse what is there. The usual envtest
# download of these binaries is not reachable here, and a new user should
# not need it either. envtest finds them through KUBEBUILDER_ASSETS=bin/.
#
# Usage: hack/controlplane.sh [BIN_DIR]     (default: bin)
set -euo pipefail

KUBE_VERSION=v1.37.1   # the module proxy refuses v1.37.2's zip today
ETCD_VERSION=v3.6.16

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

step=0
built() { # name version: true when bin/name exists and was stamped with version
  [ -x "$bin/$1" ] && [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ]
}
build() { # name version module-dir package ldflags...
  local name=$1 version=$2 dir=$3 pkg=$4; shift 4
  step=$((step + 1))
  if built "$name" "$version"; then
    echo "[$step/3] $name $version: already built in $bin"
    return
  fi
  echo "[$step/3] building $name $version from Go modules (cold: several minutes; cached afterwards)..."
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -o "$bin/$name.tmp" -ldflags "$*" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$version" > "$bin/.$name.version"
  echo "[$step/3] $name built in $((SECONDS - start))s"
}

kube_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=37 \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"

build etcd "$ETCD_VERSION" "$root/hack/controlplane/etcd" . \
  "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
build kube-apiserver "$KUBE_VERSION" "$root/hack/controlplane" ./kube-apiserver "$kube_ldflags"
build kubectl "$KUBE_VERSION" "$root/hack/controlplane" ./kubectl "$kube_ldflags"
echo "control plane ready in $bin: $("$bin/kube-apiserver" --version), etcd $("$bin/etcd" --version | head -1 | awk '{print $3}'), kubectl $("$bin/kubectl" version --client -o json | grep -m1 gitVersion | tr -d ' ",' | cut -d: -f2)"
