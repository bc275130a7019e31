#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for $FUZZTIME each (default
# 10m; `make test` runs them for a few seconds). Targets are found, not
# listed, so a new one is fuzzed without editing this file.
set -euo pipefail
FUZZTIME=${FUZZTIME:-10m}
GO=${GO:-go}
cd "$(dirname "$0")/.."
passed=0 failed=0
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	echo "fuzz $pkg $name for $FUZZTIME"
	if ! "$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 2 >/tmp/fuzz-$$.log 2>&1; then
		cat /tmp/fuzz-$$.log
		echo "FAIL: $pkg $name (a failing input is in $(dirname "$file")/testdata/fuzz/$name)"
		failed=$((failed + 1))
	else
		passed=$((passed + 1))
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func |:|' | sort)
rm -f /tmp/fuzz-$$.log
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
