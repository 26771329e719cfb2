#!/usr/bin/env bash
# Runs the hostile-input tests in a build with a sanitizer (SECURITY.md): the mutation test and
# the crafted model files (through open, verify, load, tokenize, eval from memory, so a read
# past the end of a file is a report), the damaged checkpoints and conversions, and the runtime
# inputs (the command-line tests run the sanitized hymba-edge and hymba-convert).
#   tools/sanitize-tests.sh [address|thread|undefined] [TEST FILTER]
# Own scratch folder per sanitizer (.build-address, ...): a sanitizer build is a full build.
# Leak checks are off here (Swift Testing and Foundation keep one-time allocations that
# LeakSanitizer reports); tools/fuzz/replay.sh checks leaks on every fuzzer input.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:-address}
filter=${2:-'MutationTests|HostileFileTests|BadCheckpointTests|HostileInputTests'}
flags=(-c release -Xswiftc -enable-testing -Xswiftc -sanitize="$sanitizer" --scratch-path ".build-$sanitizer")
nice -n 10 swift build --build-tests "${flags[@]}"
# Tests that cannot run in a sanitizer build (address-space limits) skip themselves on this.
export HYMBA_SANITIZER=$sanitizer
# allocator_may_return_null: a refused allocation returns NULL as malloc does (a test asks for 2^62 bytes).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:allocator_may_return_null=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
nice -n 10 swift test --skip-build "${flags[@]}" --filter "$filter" 2>&1 | tee "$log" || status=$?
if grep -qE "(ERROR|SUMMARY): [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$log"; then echo "sanitize-tests: $sanitizer REPORTED (above)"; exit 1; fi
[ "$status" -eq 0 ] || { echo "sanitize-tests: tests failed (status $status)"; exit "$status"; }
echo "sanitize-tests: $sanitizer: tests passed, no report"
