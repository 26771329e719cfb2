#!/usr/bin/env bash
# Builds the libFuzzer harnesses (with AddressSanitizer) and fuzzes the model-file reader, or
# with --state the saved-state reader (formats/HYMBA-STATE.md) on the seed corpus' nano model.
#   tools/fuzz/run.sh [--state] [SECONDS] [extra libFuzzer flags...]     (default 1800 s)
# State inputs go to corpus-state/, its crashes to findings-state/.
# One process, niced (a shared machine). New interesting inputs go to tools/fuzz/corpus/,
# crashes to tools/fuzz/findings/ (once fixed, each becomes a test: the input, or the
# condition it needed, in HostileFileTests or the tests of the code at fault). Leak checks are
# off while fuzzing (they took ~40% of the time: LeakSanitizer scans after every input whose
# mallocs and frees differ); replay.sh runs every corpus input once with them on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
harness=reader
if [ "${1:-}" = "--state" ]; then harness=state; shift; fi
seconds="${1:-1800}"; shift || true
cd "$here"
# Leak checks off here, at exit too (libFuzzer's -detect_leaks=0 covers only the inputs): the
# state harness keeps its model and sessions in process-lifetime globals, which LeakSanitizer
# reports at exit. replay.sh runs the corpus with leak checks on.
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
./build.sh
[ -d corpus-seed ] || ./make-seeds.sh corpus-seed
if [ $harness = reader ]; then
    corpus=corpus seeds=corpus-seed findings=findings extra=(-dict=hymba.dict)
else
    # Valid states of the nano model, written by the harness itself.
    [ -d corpus-state-seed ] || .build/release/hymba-fuzz-state --make-seeds corpus-state-seed
    corpus=corpus-state seeds=corpus-state-seed findings=findings-state extra=()
fi
mkdir -p "$corpus" "$findings"
exec nice -n 10 ".build/release/hymba-fuzz-$harness" "$corpus" "$seeds" "${extra[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -detect_leaks=0 \
    -artifact_prefix="$findings/" -print_final_stats=1 "$@"
