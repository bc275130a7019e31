#!/usr/bin/env bash
# The walls of docs/architecture.md ("Walls"), checked on the imports of
# the non-test code: fails, naming the package and the import, when one is
# crossed. `make verify` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
GO=${GO:-go}
fail=0

# forbid <how> <packages> <regexp> <why>: none of the packages may import a
# path matching regexp; how is "direct" (their own imports) or "deps"
# (everything they pull in).
forbid() {
	local how=$1 pkgs=$2 re=$3 why=$4 field=Imports
	[[ $how == deps ]] && field=Deps
	while read -r pkg imports; do
		for imp in $imports; do
			if [[ $imp =~ $re ]]; then
				echo "wall crossed: $pkg imports $imp ($why)"
				fail=1
			fi
		done
	done < <($GO list -f "{{.ImportPath}} {{join .$field \" \"}}" "$pkgs")
}

forbid deps   ./internal/token/...   '^(k8s\.io|sigs\.k8s\.io)/' "internal/token is pure: no Kubernetes"
forbid direct ./api/...              "^$mod/(internal|controllers|webhook)(/|\$)" "api/ carries no logic"
forbid direct ./internal/dialect/... "^($mod/controllers|sigs\.k8s\.io/controller-runtime/pkg/client|k8s\.io/client-go)(/|\$)" "dialects translate shapes; keystore.Store does the work"
forbid deps   ./internal/verify/...  "^$mod/internal/(dialect|apiserver)(/|\$)" "the verify path knows no REST shapes"
forbid deps   ./controllers/...      "^$mod/internal/(dialect|apiserver)(/|\$)" "the controller runs without the API server"

if [[ $fail == 1 ]]; then
	echo "see docs/architecture.md, Walls: move the code to the side of the wall it belongs on"
	exit 1
fi
echo "walls hold"
