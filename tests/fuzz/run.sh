#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Runs the protocol fuzzer for a bounded time:
#
#     bash tests/fuzz/run.sh <fuzzer-binary> [seconds]   (default 60)
#
# It starts from the seed corpus in tests/fuzz/corpus/ (made from the
# golden transcripts by tests/fuzz/make_corpus.py) and writes the inputs it
# finds to a fresh temporary directory, never into the source tree. Any
# crash, sanitizer report, leak or timeout makes it exit non-zero; the
# working directory is then kept and its path printed, with the input that
# failed in it (reproduce with: <fuzzer-binary> <that file>).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 <fuzzer-binary> [seconds]" >&2
	exit 2
fi
bin=$1
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$bin" ]; then
	echo "fuzz: no fuzzer binary at $bin (build with CC=clang" \
		"-Dfuzz=true)" >&2
	exit 2
fi
case $seconds in
'' | *[!0-9]*)
	echo "fuzz: seconds must be a number, not '$seconds'" >&2
	exit 2
	;;
esac

work=$(mktemp -d -t memlane-fuzz.XXXXXX)
mkdir "$work/corpus"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
"$bin" \
	-max_total_time="$seconds" \
	-max_len=4096 \
	-timeout=10 \
	-rss_limit_mb=2048 \
	-detect_leaks=1 \
	-print_final_stats=1 \
	-dict="$here/proto.dict" \
	-artifact_prefix="$work/" \
	"$work/corpus" "$here/corpus" >"$work/log" 2>&1 || status=$?

tail -n 25 "$work/log"
if [ "$status" -ne 0 ]; then
	echo "fuzz: FAILED (exit $status); log and failing input kept in" \
		"$work" >&2
	ls -l "$work" >&2
	exit 1
fi
echo "fuzz: ${seconds}s without a failure" \
	"($(ls "$work/corpus" | wc -l) new inputs)"
rm -rf "$work"
