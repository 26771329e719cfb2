#!/usr/bin/env bash
# Builds the libFuzzer harnesses (with AddressSanitizer) and fuzzes the saved-state reader
# (formats/HYMBA-STATE.md) on the seed corpus' nano model.
#   tools/fuzz/run-state.sh [SECONDS] [extra libFuzzer flags...]     (default 1800 s)
# Seeds: valid states written by the harness itself (--make-seeds). New inputs go to
# tools/fuzz/corpus-state/, crashes to tools/fuzz/findings-state/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-1800}"; shift || true
cd "$here"
./build.sh
[ -d corpus-seed ] || ./make-seeds.sh corpus-seed
[ -d corpus-state-seed ] || .build/release/hymba-fuzz-state --make-seeds corpus-state-seed
mkdir -p corpus-state findings-state
exec nice -n 10 .build/release/hymba-fuzz-state corpus-state corpus-state-seed \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -detect_leaks=0 \
    -artifact_prefix=findings-state/ -print_final_stats=1 "$@"
