#!/usr/bin/env bash
# The C API under a sanitizer: tools/capi-stress/stress.c (many contexts on one model from
# several threads, a shared context called from all of them, NULL and wrong-order calls) linked
# against a libhymba built with -sanitize=thread or -sanitize=address. Fails on any sanitizer
# report or failed check.
#   tools/capi-stress/run.sh [thread|address] [SECONDS] [THREADS]    (default: thread 120 6)
# The library is built in .build-SANITIZER (shared with tools/sanitize-tests.sh: a sanitizer
# build is a full build), niced. The program is compiled with the toolchain's clang, whose
# sanitizer runtime is the one swiftc links.
set -euo pipefail
cd "$(dirname "$0")/../.."
sanitizer=${1:-thread}
seconds=${2:-120}
threads=${3:-6}
case "$sanitizer" in thread|address) ;; *) echo "usage: $0 [thread|address] [SECONDS] [THREADS]" >&2; exit 2 ;; esac
flags=(-c release -Xswiftc -enable-testing -Xswiftc -sanitize="$sanitizer" --scratch-path ".build-$sanitizer")
nice -n 10 swift build --product hymba "${flags[@]}" >&2
bin=$(swift build "${flags[@]}" --show-bin-path)
clang=$(dirname "$(command -v swiftc)")/clang
# The sanitizer runtimes intercept libdispatch too: link the toolchain's (libhymba uses it).
swiftlib=$(dirname "$(command -v swiftc)")/../lib/swift/linux
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$clang" -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize="$sanitizer" -Wall -Wextra -Werror -Iinclude \
    tools/capi-stress/stress.c -L"$bin" -lhymba -Wl,-rpath,"$bin" \
    -L"$swiftlib" -ldispatch -lBlocksRuntime -Wl,-rpath,"$swiftlib" -lpthread -o "$work/stress"

export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 exitcode=66 second_deadlock_stack=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1 detect_leaks=1}"
status=0
nice -n 10 "$work/stress" models/tiny-code-hymba-q8.hymba "$seconds" "$threads" 2> "$work/stderr.log" || status=$?
if [ "$status" -ne 0 ] || grep -qE "(ERROR|SUMMARY): [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer" "$work/stderr.log"; then
    cat "$work/stderr.log" >&2
    echo "capi-stress: FAILED ($sanitizer, exit $status)" >&2
    exit 1
fi
echo "capi-stress: $sanitizer: no report"
