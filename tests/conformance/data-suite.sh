#!/bin/sh
# data-suite.sh NAME ORIGIN DATA -- COMMAND...: runs a test suite whose data
# comes from outside the repository (a Debian package, ../shared/testdata).
# When DATA (a file or folder) is absent, the suite is named as skipped with
# where its data comes from, and the exit status is 77 (ctest's
# SKIP_RETURN_CODE); with CI=true an absent suite fails the run (exit 1).
set -eu
name=$1 origin=$2 data=$3
shift 3
[ "${1:-}" = "--" ] && shift
if [ ! -e "$data" ]; then
	if [ "${CI:-}" = true ]; then
		echo "suite $name: FAILED: its data is absent ($data; it comes from $origin) and CI=true" >&2
		exit 1
	fi
	echo "suite $name: SKIPPED: its data is absent ($data; it comes from $origin)"
	exit 77
fi
echo "suite $name: data from $data"
exec "$@"
