#!/usr/bin/env bash
# Builds molerat into build/ (or $1), warnings as errors. Extra arguments go
# to cmake's configure step (e.g. -DMOLERAT_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja -DMOLERAT_WERROR=ON "$@" >/dev/null
cmake --build "$dir"
