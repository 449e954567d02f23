#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test twice: in the normal build (build/) and in an ASan+UBSan build
# (build-asan/), with the benchmark suite's smoke test in between
# (bench/run --quick: every scenario must still produce its figures; the
# figures are not judged), and last a 2-minute soak of the ASan+UBSan build
# (bench/soak). Every stage runs even when an earlier one failed; the
# summary at the end names the failed ones, and the exit status is 1 if
# any failed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
MOLERAT_BENCH_DEPS=1 scripts/deps.sh
jobs=$(nproc)
scripts/build.sh build
scripts/build.sh build-asan -DMOLERAT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

failed=()
stage() {   # stage NAME COMMAND...: runs one stage, records a failure
	local name=$1
	shift
	echo "== $name"
	local t0=$SECONDS
	if "$@"; then
		echo "== $name: passed ($((SECONDS - t0)) s)"
	else
		echo "== $name: FAILED ($((SECONDS - t0)) s)"
		failed+=("$name")
	fi
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# ctest prints a skipped test without its output: name each skipped suite
# with where its data comes from
skipped() { grep -h "SKIPPED:" "$1/Testing/Temporary/LastTest.log" 2>/dev/null | sort -u || true; }
stage "tests: normal build" ctest --test-dir build --output-on-failure -j"$jobs"
skipped build
stage "benchmark smoke test (bench/run --quick)" \
	bench/run --quick --no-deps --bin build/molerat --out "$(mktemp -d /tmp/molerat-bench-quick.XXXXXX)"
stage "tests: ASan+UBSan build" ctest --test-dir build-asan --output-on-failure -j"$jobs"
skipped build-asan
stage "soak: ASan+UBSan build under 2 minutes of mixed and ill-behaved traffic (bench/soak)" \
	bench/soak --seconds 120 --bin build-asan/molerat

if [ ${#failed[@]} -gt 0 ]; then
	echo "== FAILED: ${failed[*]}"
	exit 1
fi
echo "== all stages passed"
