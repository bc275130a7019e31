#!/usr/bin/env bash
# Runs the verify benchmarks and writes docs/benchmarks.md:
#   - the verify core (go test -bench, median of 5 runs) at 10,000 and
#     1,000,000 keys;
#   - forward-auth over HTTP against a plain net/http hello-world, both
#     served by cmd/verifybench in this run and loaded by the same tool (wrk,
#     keep-alive, loopback); then p50/p99 latency at half the saturating
#     rate (hey, rate-limited);
#   - gRPC ext_authz Check against a gRPC server that answers OK without
#     work, both served by internal/extauthz/cmd/grpcbench in this run and
#     loaded by its own client (go-control-plane's types, keep-alive
#     HTTP/2); then p50/p99 at half the saturating rate.
# Benchmarks report; nothing here passes or fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
duration=${BENCH_DURATION:-10}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNECTIONS:-32}

hack/gateways-install.sh
if ! command -v hey >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || { echo "hack/bench.sh: hey is missing; apt-get install -y hey as root" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null
fi

tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

echo "verify core benchmarks..." >&2
go test ./internal/verify/ -run '^$' -bench 'BenchmarkVerify' -benchmem -count 5 -timeout 30m >"$tmp/core.txt"
go test ./internal/extauthz/ -run '^$' -bench 'BenchmarkCheck' -benchmem -count 5 -timeout 10m >>"$tmp/core.txt"

echo "HTTP: forward-auth vs hello-world..." >&2
go build -o "$tmp/verifybench" ./internal/verify/cmd/verifybench
"$tmp/verifybench" -keys 10000 -token-file "$tmp/token" >"$tmp/addrs" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/addrs" ] && [ -s "$tmp/token" ] && break; sleep 0.1; done
read -r hello_kv auth_kv <"$tmp/addrs"
hello=${hello_kv#hello=}
auth=${auth_kv#auth=}
tok=$(cat "$tmp/token")
auth_url="http://$auth/v1/auth?namespace=bench&permission=invoices:read"
curl_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$auth_url")
[ "$curl_code" = 200 ] || { echo "forward-auth answered $curl_code, not 200" >&2; exit 1; }

# rps <label> <url> [header]: requests/s from wrk, median of 3 runs.
rps() {
	local url=$1; shift
	for _ in 1 2 3; do
		wrk -t"$threads" -c"$conns" -d"${duration}s" "$@" "$url" | awk '/Requests\/sec/ {print $2}'
	done | sort -n | sed -n 2p
}
hello_rps=$(rps "http://$hello/")
auth_rps=$(rps "$auth_url" -H "Authorization: Bearer $tok")

# latency at half the saturating rate: p50 and p99 in ms from hey.
latency() {
	local url=$1 rate=$2; shift 2
	local workers=8
	hey -z "${duration}s" -c "$workers" -q "$(awk -v r="$rate" -v w=$workers 'BEGIN {printf "%d", r/2/w}')" "$@" "$url" |
		awk '/ 50% in/ {p50=$3*1000} / 99% in/ {p99=$3*1000} END {printf "%.3f %.3f", p50, p99}'
}
read -r hello_p50 hello_p99 <<<"$(latency "http://$hello/" "$hello_rps")"
read -r auth_p50 auth_p99 <<<"$(latency "$auth_url" "$auth_rps" -H "Authorization: Bearer $tok")"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

# redis_auth <name> [verifybench flag...]: forward-auth with the key's rate
# limit in a redis-server verifybench starts; sets <name>_rps, <name>_p50
# and <name>_p99.
redis_auth() {
	local name=$1 kv tok url r
	shift
	"$tmp/verifybench" -keys 10000 -token-file "$tmp/token-$name" -redis "$@" >"$tmp/addrs-$name" &
	pid=$!
	for _ in $(seq 100); do [ -s "$tmp/addrs-$name" ] && [ -s "$tmp/token-$name" ] && break; sleep 0.1; done
	read -r _ kv <"$tmp/addrs-$name"
	tok=$(cat "$tmp/token-$name")
	url="http://${kv#auth=}/v1/auth?namespace=bench&permission=invoices:read"
	r=$(rps "$url" -H "Authorization: Bearer $tok")
	printf -v "${name}_rps" '%s' "$r"
	read -r "${name}_p50" "${name}_p99" <<<"$(latency "$url" "$r" -H "Authorization: Bearer $tok")"
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
echo "HTTP: forward-auth with the key's rate limit in Redis..." >&2
redis_auth shared
echo "HTTP: forward-auth with the rate limit in Redis, leases off..." >&2
redis_auth nolease -redis-leases=false

echo "accuracy: one key's limit across 2 and 3 verify servers sharing Redis..." >&2
go test ./internal/limits/ -run 'TestClusterWideRateLimit' -count=1 -v -timeout 5m | grep -E 'allowed, want' | sed 's/^ *cluster_test.go:[0-9]*: //' >"$tmp/accuracy.txt"

echo "gRPC: ext_authz Check vs a baseline that answers OK..." >&2
go build -o "$tmp/grpcbench" ./internal/extauthz/cmd/grpcbench
"$tmp/grpcbench" serve -keys 10000 -token-file "$tmp/grpc-token" >"$tmp/grpc-addrs" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/grpc-addrs" ] && [ -s "$tmp/grpc-token" ] && break; sleep 0.1; done
read -r base_kv ea_kv <"$tmp/grpc-addrs"
grpc_base=${base_kv#baseline=}
grpc_ea=${ea_kv#extauthz=}
grpc_conns=${BENCH_GRPC_CONNECTIONS:-4}
# grpc_load <addr> [-rate r]: "<requests/s> <p50 ms> <p99 ms>".
grpc_load() {
	local addr=$1; shift
	"$tmp/grpcbench" load -addr "$addr" -token-file "$tmp/grpc-token" -connections "$grpc_conns" -workers "$conns" -duration "${duration}s" "$@"
}
# grpc_rps <addr>: requests/s, median of 3 saturating runs.
grpc_rps() {
	for _ in 1 2 3; do grpc_load "$1" | cut -d' ' -f1; done | sort -n | sed -n 2p
}
grpc_base_rps=$(grpc_rps "$grpc_base")
grpc_ea_rps=$(grpc_rps "$grpc_ea")
read -r _ grpc_base_p50 grpc_base_p99 <<<"$(grpc_load "$grpc_base" -rate "$(awk -v r="$grpc_base_rps" 'BEGIN {print r/2}')")"
read -r _ grpc_ea_p50 grpc_ea_p99 <<<"$(grpc_load "$grpc_ea" -rate "$(awk -v r="$grpc_ea_rps" 'BEGIN {print r/2}')")"
kill "$pid"; pid=""

echo "revocation: 200 keys on the local control plane..." >&2
go run ./hack/revocationbench --bin bin --keys 200 >"$tmp/revocation.md"

median() { # median <benchmark name regexp> <unit>: from go test output, the figure before the unit (ns/op, B/op, allocs/op), wherever custom metrics put it
	grep -E "^$1-[0-9]+ " "$tmp/core.txt" | awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
row() {
	printf '| %s | %s | %s | %s |\n' "$1" "$(median "$2" ns/op)" "$(median "$2" B/op)" "$(median "$2" allocs/op)"
}

# docs/benchmarks.md has parts: this script's, between the verify
# markers, then hack/scalebench's (make bench-scale, the scale markers),
# hack/connbench's (make bench-connections, the connections markers) and
# sections written by hand (the leak endpoint's). This script rewrites only
# its own part and keeps everything after it as it is.
rest=""
if [ -f "$out" ] && grep -q '^<!-- verify:end -->' "$out"; then
	rest=$(sed '1,/^<!-- verify:end -->/d' "$out")
fi

{
	echo "<!-- verify:begin -->"
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%dT%H:%MZ). Figures are medians;"
	echo "they report, they do not pass or fail. Rerun on your machine: numbers from"
	echo "another machine, or a busy one, are not comparable."
	echo
	echo "## Machine"
	echo
	echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
	echo "- Memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "- Kernel: $(uname -sr); $(go version | cut -d' ' -f3-)"
	echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
	echo
	echo "## Verify core (target: < 1 µs and 0 allocs/op)"
	echo
	echo "Checksum, SHA-256, index lookup, enabled, expiry, allowed IPs (3 blocks),"
	echo "permission with a wildcard, token-bucket rate limit, lastUsedAt note."
	echo "\`go test -bench BenchmarkVerify -benchmem -count 5\`, median of 5."
	echo
	echo "| benchmark | ns/op | B/op | allocs/op |"
	echo "|---|---|---|---|"
	row "10,000 keys" "BenchmarkVerify/keys=10000"
	row "10,000 keys, parallel" "BenchmarkVerify/keys=10000/parallel"
	row "1,000,000 keys" "BenchmarkVerify/keys=1000000"
	row "1,000,000 keys, parallel" "BenchmarkVerify/keys=1000000/parallel"
	row "unknown key (lookup miss)" "BenchmarkVerifyRefused"
	row "rate limit in the process (same run, the baseline of the next rows)" "BenchmarkVerifyLimit/local"
	row "rate limit in Redis (one EVALSHA on loopback; allocations are the Redis client's)" "BenchmarkVerifyLimit/shared"
	row "rate limit in Redis, parallel" "BenchmarkVerifyLimit/shared/parallel"
	row "gRPC Check call, no network (not a 0-alloc target: the answer is a protobuf message)" "BenchmarkCheck"
	echo
	echo "## Forward-auth over HTTP (target: ≥ 0.8 × hello-world)"
	echo
	echo "Both servers run in one process (internal/verify/cmd/verifybench) on loopback;"
	echo "the same wrk run shape loads each: $threads threads, $conns keep-alive connections,"
	echo "${duration}s, median of 3. Forward-auth is \`GET /v1/auth?namespace=bench&permission=invoices:read\`"
	echo "with a valid key among 10,000, answered with the identity headers."
	echo "Load tool and servers share the machine's cores."
	echo
	echo "| server | requests/s | p50 at half rate (ms) | p99 at half rate (ms) |"
	echo "|---|---|---|---|"
	echo "| net/http hello-world | $hello_rps | $hello_p50 | $hello_p99 |"
	echo "| forward-auth /v1/auth | $auth_rps | $auth_p50 | $auth_p99 |"
	echo "| forward-auth /v1/auth, rate limit in Redis (leases, the default) | $shared_rps | $shared_p50 | $shared_p99 |"
	echo "| forward-auth /v1/auth, rate limit in Redis, leases off (one round trip each) | $nolease_rps | $nolease_p50 | $nolease_p99 |"
	echo
	echo "Ratio forward-auth / hello-world: **$(awk -v a="$auth_rps" -v h="$hello_rps" 'BEGIN {printf "%.2f", a/h}')**;"
	echo "with the rate limit in Redis (target ≥ 0.5): **$(awk -v a="$shared_rps" -v h="$hello_rps" 'BEGIN {printf "%.2f", a/h}')**;"
	echo "in Redis with leases off: **$(awk -v a="$nolease_rps" -v h="$hello_rps" 'BEGIN {printf "%.2f", a/h}')**"
	echo
	echo "The key has a rate limit it never reaches (a million a second, burst a"
	echo "million), so every verification takes from it: in the process (second row),"
	echo "or in a redis-server on the same loopback and cores (\`verifybench -redis\`,"
	echo "what \`--limits-redis-url\` does). With leases (third row) the replica takes"
	echo "up to 256 requests of this busy key per EVALSHA and serves the next"
	echo "verifications from them (docs/limits.md, \"Leases\"); with leases off (fourth"
	echo "row, \`--limits-redis-leases=false\`, and what every key whose burst is under"
	echo "20 costs) each verification is one EVALSHA round trip."
	echo
	echo "Latency: hey with 8 workers held at half of each server's saturating rate."
	echo
	echo "## gRPC ext_authz Check (target: ≥ 0.8 × a gRPC server that answers OK without work)"
	echo
	echo "Both servers run in one process (internal/extauthz/cmd/grpcbench) on loopback;"
	echo "the same load client (grpcbench load: go-control-plane's Authorization client,"
	echo "$grpc_conns keep-alive HTTP/2 connections, $conns concurrent callers, ${duration}s) loads each;"
	echo "requests/s is the median of 3 saturating runs, p50/p99 come from one run held"
	echo "at half of each server's saturating rate. The request is what Envoy sends for"
	echo "\`GET /invoices\` with a valid key among 10,000, from a trusted proxy, on a route"
	echo "whose context extensions require \`invoices:read\` and accept namespace \`bench\`; the answer carries the identity"
	echo "headers and removes the key's header. Load client and servers share the machine's cores."
	echo
	echo "| server | requests/s | p50 at half rate (ms) | p99 at half rate (ms) |"
	echo "|---|---|---|---|"
	echo "| gRPC baseline (answers OK, no work) | $grpc_base_rps | $grpc_base_p50 | $grpc_base_p99 |"
	echo "| ext_authz Check | $grpc_ea_rps | $grpc_ea_p50 | $grpc_ea_p99 |"
	echo
	echo "Ratio ext_authz / baseline: **$(awk -v a="$grpc_ea_rps" -v h="$grpc_base_rps" 'BEGIN {printf "%.2f", a/h}')**"
	echo
	echo "## Cluster-wide rate limit accuracy (target: ± 10 %)"
	echo
	echo "\`TestClusterWideRateLimit\`: a key limited to 5/s (burst 10) behind 2, then 3"
	echo "verify servers over HTTP sharing one redis-server, each loaded far above the"
	echo "limit; after 2 s of load have spent the burst, allowed requests over 10 s"
	echo "against 5/s × 10 s. Then, with 3 servers, Redis stopped (each server enforces"
	echo "its third of the limit) and started again (shared again)."
	echo
	sed 's/^/- /' "$tmp/accuracy.txt"
	echo
	echo "## Revocation (target: p99 < 100 ms)"
	echo
	echo "hack/revocationbench: the controller and the verify server against the local"
	echo "control plane (bin/); 200 keys issued, then each deleted in turn while"
	echo "\`/v1/auth\` is polled every millisecond with its token, until the first 401."
	echo "The time runs from the Delete call to that 401: API server, watch event,"
	echo "index update. The brute-force guard is off for this run: it polls unknown"
	echo "keys from one address, and the guard's refill rate would be measured instead."
	echo
	cat "$tmp/revocation.md"
	echo
	echo "## Raw core output"
	echo
	echo '```'
	grep -E '^(Benchmark|goos|goarch|cpu)' "$tmp/core.txt"
	echo '```'
	echo "<!-- verify:end -->"
	if [ -n "$rest" ]; then
		echo "$rest"
	fi
} >"$tmp/benchmarks.md"
cat "$tmp/benchmarks.md" >"$out"
echo "wrote $out" >&2
