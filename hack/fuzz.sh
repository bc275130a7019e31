#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for $FUZZTIME each (default
# 10m; `make test` runs each for a fixed number of inputs). Targets are found,
# not listed, so a new one is fuzzed without editing this file.
#
# Go 1.26's fuzz coordinator can end a duration-bounded run (-fuzztime 10m)
# with a bare "context deadline exceeded" and no failing input
# (go.dev/issue/75804, fixed in Go 1.27). A run that fails that way and writes
# no new input under testdata/fuzz is reported as a flake, not a failure;
# `make test` sidesteps the race by counting inputs (-fuzztime Nx).
set -euo pipefail
FUZZTIME=${FUZZTIME:-10m}
GO=${GO:-go}
cd "$(dirname "$0")/.."
passed=0 failed=0 flaked=0
# How many inputs a target's testdata holds: a new one means a real failure.
corpus_size() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	echo "fuzz $pkg $name for $FUZZTIME"
	corpus="$(dirname "$file")/testdata/fuzz/$name"
	before=$(corpus_size "$corpus")
	if ! "$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 2 >/tmp/fuzz-$$.log 2>&1; then
		cat /tmp/fuzz-$$.log
		if [ "$(corpus_size "$corpus")" -eq "$before" ] && grep -q '^    context deadline exceeded$' /tmp/fuzz-$$.log; then
			echo "FLAKE: $pkg $name stopped with Go's fuzztime deadline race (go.dev/issue/75804) and wrote no failing input"
			flaked=$((flaked + 1))
			continue
		fi
		echo "FAIL: $pkg $name (a failing input is in $(dirname "$file")/testdata/fuzz/$name)"
		failed=$((failed + 1))
	else
		passed=$((passed + 1))
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's|^\./||; s|:func |:|' | sort)
rm -f /tmp/fuzz-$$.log
echo "fuzz: $passed passed, $failed failed, $flaked flaked"
[ "$failed" -eq 0 ]
