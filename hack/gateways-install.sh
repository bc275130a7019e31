#!/usr/bin/env bash
# Installs the real gateways the verify tests run in front of the operator
# (NGINX with auth_request, Caddy with forward_auth), the wrk load tool
# that `make bench` uses, and promtool (Debian's prometheus package) that
# checks and unit-tests the alert rules in config/monitoring, and
# redis-server that the cluster-wide rate-limit tests start on loopback
# (internal/limits/limitstest), from Debian's packages. Idempotent and quiet when
# everything is already there; needs root (or sudo) only when something is
# missing.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		echo "hack/gateways-install.sh: missing ${need[*]}; run as root (or install them: apt-get install -y ${need[*]})" >&2
		exit 1
	fi
fi
echo "installing ${need[*]} from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
# Package services must not start on install: the tests start their own
# gateways on loopback with their own configs.
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod +x "$policy"
	created_policy=1
fi
trap '[ -n "$created_policy" ] && $sudo rm -f "$policy"' EXIT
if ! $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
	$sudo apt-get update -qq >/dev/null
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
