#!/usr/bin/env bash
# Builds the libFuzzer harness (with AddressSanitizer) and fuzzes the model-file reader.
#   tools/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     (default 1800 s)
# One process, niced (a shared machine). New interesting inputs go to tools/fuzz/corpus/,
# crashes to tools/fuzz/findings/ (once fixed, each becomes a test: the input, or the
# condition it needed, in HostileFileTests or the tests of the code at fault). Leak checks are
# off while fuzzing (they took ~40% of the time: LeakSanitizer scans after every input whose
# mallocs and frees differ); replay.sh runs every corpus input once with them on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-1800}"; shift || true
cd "$here"
./build.sh
[ -d corpus-seed ] || ./make-seeds.sh corpus-seed
mkdir -p corpus findings
exec nice -n 10 .build/release/hymba-fuzz-reader corpus corpus-seed \
    -dict=hymba.dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -detect_leaks=0 \
    -artifact_prefix=findings/ -print_final_stats=1 "$@"
