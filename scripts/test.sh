#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test twice: in the normal build (build/) and in an ASan+UBSan build
# (build-asan/), with the benchmark suite's smoke test in between
# (bench/run --quick: every scenario must still produce its figures; the
# figures are not judged), and last a 2-minute soak of the ASan+UBSan build
# (bench/soak). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
MOLERAT_BENCH_DEPS=1 scripts/deps.sh
jobs=$(nproc)
scripts/build.sh build
scripts/build.sh build-asan -DMOLERAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests: normal build"
ctest --test-dir build --output-on-failure -j"$jobs"
echo "== benchmark smoke test (bench/run --quick)"
bench/run --quick --no-deps --bin build/molerat --out "$(mktemp -d /tmp/molerat-bench-quick.XXXXXX)"
echo "== tests: ASan+UBSan build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure -j"$jobs"
echo "== soak: ASan+UBSan build under 2 minutes of mixed and ill-behaved traffic (bench/soak)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	bench/soak --seconds 120 --bin build-asan/molerat
