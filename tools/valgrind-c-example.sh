#!/usr/bin/env bash
# Runs Examples/c/generate.c under valgrind's memcheck on the shipped model: open, generate
# with streaming output, clean up. Fails (exit 1) on any invalid read/write, use of
# uninitialised memory, or definitely/indirectly/possibly lost block, except the Swift
# runtime's one-time allocations in tools/valgrind-swift-runtime.supp (each explained there).
#
#   tools/valgrind-c-example.sh [TOKENS]      # default 16 tokens
#
# Valgrind cannot decode AVX-512. So this runs a build for generic x86-64 (HYMBA_TARGET_CPU=
# generic: every kernel backend in one library, the code around them for the baseline), in
# .build-generic (the folder .ci/run tests), with HYMBA_BACKEND=avx2: the AVX2 kernels, which
# valgrind runs (the portable backend on other architectures). Later runs only rebuild what
# changed. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

tokens=${1:-16}
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (apt-get install -y valgrind)" >&2; exit 1; }
case "$(uname -m)" in
    x86_64) backend=avx2 ;;
    *) backend=portable ;;
esac
export HYMBA_TARGET_CPU=generic HYMBA_BACKEND=$backend
# The manifest (and so the target CPU) is cached per scratch folder.
scratch=.build-generic
swift build -c release --product hymba --scratch-path "$scratch" >&2
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -g -O1 -Wall -Wextra -Werror -Iinclude Examples/c/generate.c -L"$bin" -lhymba -Wl,-rpath,"$bin" -o "$work/generate"

status=0
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes \
    --suppressions=tools/valgrind-swift-runtime.supp --error-exitcode=1 \
    --log-file="$work/memcheck.log" \
    "$work/generate" -n "$tokens" -m models/tiny-code-hymba-q8.hymba "def fibonacci(n):" > "$work/out.txt" || status=$?

sed -n '/HEAP SUMMARY/,$p' "$work/memcheck.log" | sed 's/^==[0-9]*== //'
if [ "$status" -ne 0 ]; then
    echo "memcheck: FAILED (exit $status); the full log:" >&2
    cat "$work/memcheck.log" >&2
    exit 1
fi
grep -q "ERROR SUMMARY: 0 errors" "$work/memcheck.log"
echo "memcheck: clean ($tokens tokens generated: $(wc -c < "$work/out.txt") bytes of text; libhymba built for $HYMBA_TARGET_CPU, $HYMBA_BACKEND kernels)"
