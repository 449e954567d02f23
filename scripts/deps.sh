#!/usr/bin/env bash
# Installs the Debian packages molerat needs to build, test and benchmark,
# only those missing. Idempotent; needs root (apt-get). prometheus (with
# promtool) and chromium are for the admin endpoint's tests only
# (tests/integ/test_admin_prom.py, test_admin_page.py), which run their own
# prometheus and headless chromium on free ports.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libssl-dev libc-ares-dev libcmocka-dev
      golang-github-burntsushi-toml-dev golang-github-flynn-noise-dev
      python3 python3-pytest python3-dissononce python3-websockets dante-server tinyproxy
      prometheus chromium
      clang libclang-rt-14-dev openssl
      systemd man-db groff-base)
[ "${MOLERAT_BENCH_DEPS:-0}" = 1 ] && pkgs+=(iperf3 wrk nginx-light gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	# Debian's prometheus package enables and starts a system prometheus
	# on :9090: one just installed here is stopped and disabled (the tests
	# need none; one installed before is left alone)
	if [[ " ${missing[*]} " == *" prometheus "* ]]; then
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
		service prometheus stop >/dev/null 2>&1 || true
	fi
fi
