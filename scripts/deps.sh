#!/usr/bin/env bash
# Installs the Debian packages molerat needs to build, test and benchmark,
# only those missing. Idempotent; needs root (apt-get).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libssl-dev libc-ares-dev libcmocka-dev
      golang-github-burntsushi-toml-dev golang-github-flynn-noise-dev
      python3 python3-pytest python3-dissononce python3-websockets dante-server tinyproxy
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
fi
