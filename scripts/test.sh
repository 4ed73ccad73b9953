#!/usr/bin/env bash
# Everything `make test` runs, in order: the unit and transcript tests in a
# normal build and in an ASan+UBSan build, then a bounded libFuzzer run of
# the protocol parser. Any failure stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${FUZZ_SECONDS:-60}

setup() { # dir, extra meson args...
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
}

echo "== release build"
setup build --buildtype=release
meson test -C build --print-errorlogs

echo "== ASan + UBSan build"
setup build-asan --buildtype=debug -Db_sanitize=address,undefined \
	-Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C build-asan --print-errorlogs

echo "== fuzz the protocol parser for ${fuzz_seconds}s"
CC=clang setup build-fuzz --buildtype=debug -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false
bash tests/fuzz/run.sh build-fuzz/tests/fuzz_proto "$fuzz_seconds"
