#!/usr/bin/env bash
# Runs inputs once each through the fuzz harness with LeakSanitizer on (and AddressSanitizer, as
# always): no mutation. Default: the seeds and the fuzzer's corpus.
#   tools/fuzz/replay.sh [FILE|DIR ...]
# Exit status 0 and "no report" at the end: nothing crashed, read out of bounds or leaked.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
./build.sh
if [ $# -eq 0 ]; then set -- corpus-seed corpus; fi
files=()
for a in "$@"; do
    if [ -d "$a" ]; then while IFS= read -r f; do files+=("$f"); done < <(find "$a" -type f | sort)
    elif [ -f "$a" ]; then files+=("$a"); fi
done
echo "replaying ${#files[@]} inputs with leak checks"
# Batches keep the command line short; each batch is one process (leaks are reported at exit).
for ((i = 0; i < ${#files[@]}; i += 200)); do
    nice -n 10 .build/release/hymba-fuzz-reader -detect_leaks=1 -timeout=10 -rss_limit_mb=3072 \
        "${files[@]:i:200}" >/dev/null 2>replay.log || { cat replay.log; echo "replay: REPORT in batch at $i"; exit 1; }
done
rm -f replay.log
echo "replay: no report"
