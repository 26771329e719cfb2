#!/usr/bin/env bash
# Peak resident set against the memory budget (issue 6), on synthesized q4 models at 8K context.
#
#   tools/bench/memory.sh                    # every case below
#   tools/bench/memory.sh --sizes 125m       # one size
#
# Each case is one `hymba-edge run` process (the whole thing a user runs: tokenizer, model,
# session, sampler) that reads a ~250-token prompt and generates --gen-tokens tokens greedily
# at --ctx 8192. Its stats line gives the peak RSS (VmHWM), the plan it chose within the
# budget and the decode speed; /usr/bin/time's maxrss (getrusage) is recorded beside it when
# available. The cases:
#   - every size with no budget (all weights resident, f16 KV: what the model takes as asked);
#   - every size within its target: 125m 128 MiB, 350m 320 MiB, 1.5b 1 GiB (the planner
#     keeps the weights resident when they fit);
#   - 1.5b within 512 MiB and 256 MiB (weights streamed), and 150 MiB (also q8 KV, smaller
#     chunks);
# then the speed of hymba-1.5b resident (--memory-budget 1G) and streamed (256M) with
# `hymba-edge bench` (medians of --repetitions, the two modes alternated --rounds times: the
# machine may be shared, and tok/s of one `run` are noisy).
# The models are synthesized once (hymba-convert synthesize, seed 0, zstd, the tiny-code-hymba
# tokenizer) into tools/bench/cache/memory/ (git-ignored). Also measured: the resident set of
# the bare process (`hymba-edge --version`), which MemoryPlan.processAllowanceBytes covers.
# Prints a Markdown table (also written to tools/bench/cache/memory/results.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$ROOT/tools/bench/cache/memory"
SIZES="125m,350m,1.5b"
THREADS=2
GEN=32
ROUNDS=2
REPS=3
CTX=8192
BIN="$ROOT/.build/release"

usage() {
    cat <<EOF
usage: $0 [options]
  --sizes LIST       from 125m,350m,1.5b (default: $SIZES)
  --threads N        kernel threads (default: $THREADS)
  --gen-tokens N     tokens generated per case (default: $GEN)
  --rounds N         alternations of resident and streamed bench runs (default: $ROUNDS; 0: skip)
  --repetitions N    bench repetitions per run (default: $REPS)
  --bin DIR          where hymba-edge and hymba-convert are (default: .build/release, built if missing)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --sizes) SIZES="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --gen-tokens) GEN="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --repetitions) REPS="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

log() { echo "[memory] $*" >&2; }
die() { echo "[memory] error: $*" >&2; exit 1; }

if [[ ! -x "$BIN/hymba-edge" || ! -x "$BIN/hymba-convert" ]]; then
    log "swift build -c release"
    (cd "$ROOT" && swift build -c release >&2) || die "swift build failed"
fi
EDGE="$BIN/hymba-edge"
CONVERT="$BIN/hymba-convert"
mkdir -p "$CACHE"

# The same ~250-token prompt for every case (two prefill chunks of 128).
PROMPT="$CACHE/prompt.txt"
head -c 1000 "$ROOT/Tests/Fixtures/tiny-code-hymba/heldout.txt" >"$PROMPT"

model() { echo "$CACHE/hymba-$1-q4.hymba"; }
for s in ${SIZES//,/ }; do
    m="$(model "$s")"
    [[ -f "$ROOT/Tests/Fixtures/configs/hymba-$s/config.json" ]] || die "no config for size $s"
    if [[ ! -f "$m" ]]; then
        log "hymba-convert synthesize hymba-$s q4 → $m"
        "$CONVERT" synthesize --config "$ROOT/Tests/Fixtures/configs/hymba-$s/config.json" --quant q4 \
            --tokenizer "$ROOT/Tests/Fixtures/tiny-code-hymba" -o "$m" >"$CACHE/synthesize-$s.log" 2>&1 \
            || die "synthesize failed: see $CACHE/synthesize-$s.log"
    fi
done

TIME=""
if [[ -x /usr/bin/time ]]; then TIME="/usr/bin/time"; fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Bare process: the start-up resident set.
if [[ -n "$TIME" ]]; then
    startup_kb=$($TIME -f "%M" "$EDGE" --version 2>&1 >/dev/null | tail -1)
    STARTUP="$(awk -v k="$startup_kb" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
else
    STARTUP="unknown (no /usr/bin/time)"
fi

ROWS=()
# run_case SIZE BUDGET(or -) TARGET-MiB(or -)
run_case() {
    local size="$1" budget="$2" target="$3"
    local args=(run -m "$(model "$size")" --ctx "$CTX" -p "@$PROMPT" -n "$GEN" --temp 0 --threads "$THREADS")
    [[ "$budget" != "-" ]] && args+=(--memory-budget "$budget")
    log "hymba-edge ${args[*]}"
    local err="$CACHE/run-$size-$budget.err" time_kb=""
    if [[ -n "$TIME" ]]; then
        $TIME -f "maxrss_kb %M" -o "$CACHE/time.out" "$EDGE" "${args[@]}" >/dev/null 2>"$err" || { cat "$err" >&2; die "run failed"; }
        time_kb=$(awk '/maxrss_kb/ { print $2 }' "$CACHE/time.out")
    else
        "$EDGE" "${args[@]}" >/dev/null 2>"$err" || { cat "$err" >&2; die "run failed"; }
    fi
    local stats
    stats="$(grep -E '^prompt: ' "$err" | tail -1)"
    [[ -n "$stats" ]] || { cat "$err" >&2; die "no stats line"; }
    local prefill decode peak plan chose planned
    prefill="$(sed -E 's/^prompt: [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/' <<<"$stats")"
    decode="$(sed -E 's/.*generated: [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/' <<<"$stats")"
    peak="$(sed -E 's/.*peak RSS: ([0-9.]+) MiB.*/\1/' <<<"$stats")"
    plan="$(sed -E 's/.*\| plan: ([^|]*).*/\1/' <<<"$stats")"
    # "chunk 128, KV f16, weights resident, 123.45 MiB (to fit: ...)"
    chose="$(sed -E 's/^(chunk [0-9]+), KV ([a-z0-9]+), weights ([a-z]+), .*/\1, KV \2, \3/' <<<"$plan")"
    planned="$(sed -E 's/^[^,]+, [^,]+, [^,]+, ([0-9.]+) MiB.*/\1/' <<<"$plan")"
    local limit="${budget}"
    [[ "$budget" == "-" ]] && limit="none"
    local verdict="-"
    if [[ "$target" != "-" ]]; then
        verdict="$(awk -v p="$peak" -v t="$target" 'BEGIN { print (p <= t ? "yes" : "NO") }')"
    fi
    local timecol="-"
    [[ -n "$time_kb" ]] && timecol="$(awk -v k="$time_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
    ROWS+=("| hymba-$size | $limit | $chose | $planned | **$peak** | $timecol | $verdict | $prefill | $decode |")
}

for s in ${SIZES//,/ }; do
    run_case "$s" - -
    case "$s" in
        125m) run_case 125m 128M 128 ;;
        350m) run_case 350m 320M 320 ;;
        1.5b)
            run_case 1.5b 1G 1024
            run_case 1.5b 512M 512
            run_case 1.5b 256M 256
            run_case 1.5b 150M 150
            ;;
    esac
done

# Speed, resident vs streamed: bench medians, alternated.
SPEED=()
if [[ ",$SIZES," == *",1.5b,"* && "$ROUNDS" -gt 0 ]]; then
    command -v python3 >/dev/null || die "python3 is needed to read bench --json"
    for ((r = 1; r <= ROUNDS; r++)); do
        for budget in 1G 256M; do
            args=(bench -m "$(model 1.5b)" --ctx "$CTX" --prompt-tokens 64 --gen-tokens 16 --repetitions "$REPS"
                  --threads "$THREADS" --memory-budget "$budget" --json)
            log "hymba-edge ${args[*]}"
            json="$("$EDGE" "${args[@]}")" || die "bench failed"
            SPEED+=("$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print("| hymba-1.5b | %s | %s | %d | %.1f | %.2f | %.2f |" % (sys.argv[2], d["weights"], d["prefill_chunk"],
      d["peak_rss_bytes"] / 1048576, d["prefill_tokens_per_second"], d["decode_tokens_per_second"]))
' "$json" "$budget")")
        done
    done
fi

{
    echo "hymba-edge $("$EDGE" --version), $(uname -m), $(nproc) cores, threads $THREADS; q4 models (hymba-convert synthesize, zstd), ctx $CTX, prompt $(wc -c <"$PROMPT") bytes (~250 tokens), $GEN tokens generated greedily. Bare process (hymba-edge --version): $STARTUP."
    echo
    echo "| model | --memory-budget | plan chose | planned MiB | peak RSS MiB (VmHWM) | maxrss MiB (getrusage) | within target | prefill tok/s | decode tok/s |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    if [[ ${#SPEED[@]} -gt 0 ]]; then
        echo
        echo "Speed (hymba-edge bench, ctx $CTX, 64-token prefill, 16 decodes, median of $REPS repetitions; rounds alternate the two modes):"
        echo
        echo "| model | --memory-budget | weights | chunk | peak RSS MiB | prefill tok/s | decode tok/s |"
        echo "|---|---|---|---|---|---|---|"
        printf '%s\n' "${SPEED[@]}"
    fi
} | tee "$CACHE/results.md"
