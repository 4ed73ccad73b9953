#!/usr/bin/env bash
# Everything `make test` runs, in order: the format check, the unit,
# transcript and integration tests in a release build and in an
# ASan+UBSan build, then a bounded libFuzzer run of the protocol parser.
# Any failure stops the run with a non-zero exit; the last line counts
# what passed.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${FUZZ_SECONDS:-60}
passed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

setup() { # dir, extra meson args...
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
}

run_suite() { # dir
	meson test -C "$1" --print-errorlogs | tee "$log"
	passed=$((passed + $(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log")))
}

echo "== format"
bash scripts/format-check.sh
passed=$((passed + 1))

echo "== release build"
setup build --buildtype=release
run_suite build

echo "== ASan + UBSan build"
setup build-asan --buildtype=debug -Db_sanitize=address,undefined \
	-Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan

echo "== fuzz the protocol parser for ${fuzz_seconds}s"
CC=clang setup build-fuzz --buildtype=debug -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false
bash tests/fuzz/run.sh build-fuzz/tests/fuzz_proto "$fuzz_seconds"
passed=$((passed + 1))

echo "make test: ${passed} passed, 0 failed"
