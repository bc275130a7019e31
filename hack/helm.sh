#!/usr/bin/env bash
# Builds helm from Go modules into bin/ once; later calls reuse it. Like the
# control plane (hack/controlplane.sh), nothing is downloaded but Go modules
# through the module proxy. The chart tests (internal/install) use it.
#
# Usage: hack/helm.sh [BIN_DIR]     (default: bin)
set -euo pipefail

# shellcheck source=versions.env
. "$(dirname "$0")/versions.env"
# The Kubernetes version helm assumes without a cluster (helm template,
# helm lint): the minor of the k8s.io modules it is built with, as helm's
# own Makefile stamps it. Unstamped, it would be 1.20.
KUBE_MINOR=${KUBE_VERSION#v1.}; KUBE_MINOR=${KUBE_MINOR%%.*}
STAMP=$HELM_VERSION+k8s1.$KUBE_MINOR

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

if [ -x "$bin/helm" ] && [ "$(cat "$bin/.helm.version" 2>/dev/null)" = "$STAMP" ]; then
  echo "[helm] $STAMP: already built in $bin"
  exit 0
fi
echo "[helm] building helm $HELM_VERSION from Go modules (cold: a few minutes; cached afterwards)..."
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# go install into a scratch GOBIN, so a failed build leaves no half binary.
# The versions are stamped the way helm's own Makefile does it.
GOBIN=$tmp GOFLAGS=-trimpath go install -ldflags "-s -w \
  -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$tmp/helm" "$bin/helm"
echo "$STAMP" > "$bin/.helm.version"
echo "[helm] built in $((SECONDS - start))s: $("$bin/helm" version --short)"
