#!/usr/bin/env bash
# The walls of docs/architecture.md ("Walls"), checked on the imports of
# the non-test code: fails, naming the package and the import, when one is
# crossed. `make verify` runs it; hack/walls_test.go proves it fails on
# each wall (GOFLAGS=-overlay adds a crossing import without touching the
# tree).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
GO=${GO:-go}
fail=0

# forbid <how> <packages> <regexp> <why>: none of the packages may import a
# path matching regexp; how is "direct" (their own imports) or "deps"
# (everything they pull in).
forbid() {
	local how=$1 pkgs=$2 re=$3 why=$4 field=Imports listed
	[[ $how == deps ]] && field=Deps
	# Listed first, not read from a process substitution, so that a
	# failing go list fails the check instead of passing it unseen; a
	# package go list could not load (an import that does not resolve:
	# go list still exits 0) fails it too, since its imports are unknown.
	if ! listed=$($GO list -f "{{if or .Error .DepsErrors}}broken{{else}}ok{{end}} {{.ImportPath}} {{join .$field \" \"}}" "$pkgs"); then
		echo "walls: go list $pkgs failed: fix the error above, then run hack/walls.sh again"
		exit 1
	fi
	while read -r state pkg imports; do
		if [[ $state == broken ]]; then
			$GO list -e -f '{{with .Error}}{{.}}{{"\n"}}{{end}}{{range .DepsErrors}}{{.}}{{"\n"}}{{end}}' "$pkg"
			echo "walls: go list cannot load $pkg (above), so its imports cannot be checked: fix it, then run hack/walls.sh again"
			fail=1
			continue
		fi
		for imp in $imports; do
			if [[ $imp =~ $re ]]; then
				echo "wall crossed: $pkg imports $imp ($why)"
				fail=1
			fi
		done
	done <<<"$listed"
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
