#!/usr/bin/env bash
# Fails, naming the files, when any C file differs from what clang-format
# (the project's .clang-format) would make of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if ! clang-format --style=file "$f" | cmp -s "$f" -; then
		echo "not formatted: $f (run: make format)"
		bad=1
	fi
done
exit $bad
