#!/usr/bin/env bash
# Side-by-side speed of hymba-edge and llama.cpp on models of equal size and bits per weight.
#
#   tools/bench/compare-llamacpp.sh                       # everything: 125m,350m,1.5b × q4,q8
#   tools/bench/compare-llamacpp.sh --sizes 125m --types q4   # a quick run
#   tools/bench/compare-llamacpp.sh --backend avx2            # hymba-edge's AVX2 kernels vs AVX2 llama.cpp
#
# Steps (each cached under $HYMBA_BENCH_CACHE, default tools/bench/cache/, git-ignored; a re-run
# only measures):
#  1. a Python venv with llama.cpp's converter needs (torch, transformers, ...) and matplotlib;
#  2. llama.cpp's llama-bench and llama-quantize, built (CMake, Release) from the source in the
#     llama-cpp-python sdist on PyPI (vendor/llama.cpp), in the variant --backend asks for
#     (llamacpp.sh: native CPU, or AVX2 without any AVX-512);
#  3. hymba-edge and hymba-convert: `swift build -c release` (Package.swift targets the host CPU,
#     -target-cpu native, unless HYMBA_TARGET_CPU says otherwise); --backend goes to hymba-edge as
#     HYMBA_BACKEND;
#  4. random-weight Llama checkpoints of the Hymba sizes (make_llama_hf.py), converted with
#     convert_hf_to_gguf.py to f16 GGUF, quantized with llama-quantize --pure to Q4_0 / Q8_0
#     (every matrix, the tied embedding included, as hymba-convert's q4 / q8 recipes do);
#     Hymba models from hymba-convert synthesize with Tests/Fixtures/configs/hymba-SIZE;
#  5. the machine's memory read bandwidth (membw.c, 1 thread and --threads threads);
#  6. llama-bench and hymba-edge bench alternately on each size and type (the machine is
#     shared: ratios within one run are what counts), --rounds times;
#  7. report.py: the table on stdout, tools/bench/results/latest.{md,json,png} (latest-BACKEND.*
#     for --backend avx2, avx512, portable), and that backend's results block of BENCHMARKS.md
#     (unless --no-write).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tools/bench"
# shellcheck source=tools/bench/llamacpp.sh
source "$BENCH/llamacpp.sh"

SIZES="125m,350m,1.5b"
TYPES="q4,q8"
THREADS=2
PROMPT=256
GEN=64
DEPTH=0
REPS=3
ROUNDS=1
WAIT_IDLE=0
WAIT_MAX=900
HYMBA_EDGE=""
HYMBA_CONVERT=""
WRITE=1
PREPARE_ONLY=0
BACKEND=native
# The llama.cpp each hymba-edge backend is compared with. portable is what every CPU without
# hymba-edge's AVX2 or AVX-512 kernels runs (AVX2-only x86 today, ARM until a NEON backend
# exists); the peer such a user would run is llama.cpp with SIMD kernels for that CPU, and on
# x86 that is the AVX2 build, so portable is measured against AVX2 llama.cpp.
declare -A LLAMA_VARIANT_OF=([native]=native [avx512]=native [avx2]=avx2 [portable]=avx2)

usage() {
    cat <<EOF
usage: $0 [options]
  --sizes LIST          model sizes, from 125m,350m,1.5b (default: $SIZES)
  --types LIST          q4 (vs Q4_0) and/or q8 (vs Q8_0) (default: $TYPES)
  --threads N           threads for both engines and the bandwidth test (default: $THREADS)
  --prompt-tokens N     prefill length (default: $PROMPT)
  --gen-tokens N        decoded tokens (default: $GEN)
  --depth N             context tokens before both tests (llama-bench -d, hymba-edge bench --depth;
                        default: $DEPTH: both decode from their empty context)
  --repetitions N       timed repetitions per engine and test; medians are compared (default: $REPS)
  --rounds N            alternations of the two engines per model; medians over all (default: $ROUNDS)
  --wait-idle PCT       before each measurement, wait until the CPUs were at least PCT% idle over
                        5 s (other jobs quiet; 0: don't wait; default: $WAIT_IDLE)
  --wait-max S          give up waiting after S seconds and measure anyway (default: $WAIT_MAX)
  --backend NAME        hymba-edge kernels: native (default: what the binary picks on this CPU),
                        avx512, avx2 or portable (passed as HYMBA_BACKEND); llama.cpp is built to
                        match: native for native and avx512, AVX2-only for avx2 and portable
  --hymba-edge PATH     use this binary (and hymba-convert next to it unless --hymba-convert)
  --hymba-convert PATH  use this hymba-convert
  --no-write            print the table only; leave tools/bench/results and BENCHMARKS.md alone
environment: HYMBA_BENCH_CACHE=DIR  the cache (venv, llama.cpp builds, models; default $BENCH/cache)
  --prepare-only        build llama.cpp, hymba-edge and the models, then stop (nothing is measured)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --sizes) SIZES="$2"; shift 2 ;;
        --types) TYPES="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --prompt-tokens) PROMPT="$2"; shift 2 ;;
        --gen-tokens) GEN="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --repetitions) REPS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        --wait-max) WAIT_MAX="$2"; shift 2 ;;
        --backend) BACKEND="$2"; shift 2 ;;
        --hymba-edge) HYMBA_EDGE="$2"; shift 2 ;;
        --hymba-convert) HYMBA_CONVERT="$2"; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        --prepare-only) PREPARE_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

for n in THREADS PROMPT GEN REPS ROUNDS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "--$(echo "$n" | tr 'A-Z' 'a-z'): ${!n} is not a positive integer"
done
[[ "$DEPTH" =~ ^[0-9]+$ ]] || die "--depth: $DEPTH is not a whole number"
[[ "$WAIT_IDLE" =~ ^[0-9]+$ && "$WAIT_IDLE" -le 100 ]] || die "--wait-idle: $WAIT_IDLE is not a percentage (0-100)"
[[ "$WAIT_MAX" =~ ^[0-9]+$ ]] || die "--wait-max: $WAIT_MAX is not a whole number of seconds"
[[ -n "${LLAMA_VARIANT_OF[$BACKEND]:-}" ]] || die "--backend: unknown backend '$BACKEND' (native, avx512, avx2, portable)"
LLAMA_VARIANT="${LLAMA_VARIANT_OF[$BACKEND]}"
# native leaves the choice to the binary; the others force one (a binary whose CPU lacks it refuses).
HYMBA_ENV=()
[[ $BACKEND == native ]] || HYMBA_ENV=("HYMBA_BACKEND=$BACKEND")

# Llama shapes of equal size to each Hymba config: hidden, layers, heads, KV heads, FFN.
declare -A LLAMA_SHAPE=(
    [125m]="512 24 8 2 2560"
    [350m]="768 32 12 4 3584"
    [1.5b]="1600 32 25 5 8320"
)
declare -A GGUF_TYPE=([q4]=Q4_0 [q8]=Q8_0)
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
IFS=, read -r -a TYPE_LIST <<<"$TYPES"
for s in "${SIZE_LIST[@]}"; do [[ -n "${LLAMA_SHAPE[$s]:-}" ]] || die "--sizes: unknown size '$s' (125m, 350m, 1.5b)"; done
for t in "${TYPE_LIST[@]}"; do [[ -n "${GGUF_TYPE[$t]:-}" ]] || die "--types: unknown type '$t' (q4, q8)"; done

# 1. Python environment.
bench_venv

# 2. llama.cpp from the llama-cpp-python sdist, in the variant matching the backend.
llama_source
llama_build "$LLAMA_VARIANT" llama-bench llama-quantize
LLAMA_BENCH="$LLAMA_BUILD/bin/llama-bench"
LLAMA_QUANTIZE="$LLAMA_BUILD/bin/llama-quantize"

# 3. hymba-edge and hymba-convert for this CPU.
if [[ -z "$HYMBA_EDGE" ]]; then
    # One log per checkout: worktrees sharing the cache may build at the same time.
    swift_log="$CACHE/swift-build-$(basename "$ROOT").log"
    log "swift build -c release (log: $swift_log)"
    (cd "$ROOT" && swift build -c release >"$swift_log" 2>&1) || die "swift build failed: see $swift_log"
    HYMBA_EDGE="$ROOT/.build/release/hymba-edge"
fi
[[ -x "$HYMBA_EDGE" ]] || die "$HYMBA_EDGE: not an executable"
# The commit of the checkout the binary sits in (this one when built above; another worktree's
# for its --hymba-edge), taken now: the tree may change while the runs go on.
BINARY_TREE="$(dirname "$(realpath "$HYMBA_EDGE")")"
REVISION="$(git -C "$BINARY_TREE" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ $REVISION != unknown && -n "$(git -C "$BINARY_TREE" status --porcelain --untracked-files=no)" ]]; then REVISION+="-dirty"; fi
HYMBA_CONVERT="${HYMBA_CONVERT:-$(dirname "$HYMBA_EDGE")/hymba-convert}"
[[ -x "$HYMBA_CONVERT" ]] || die "$HYMBA_CONVERT: not an executable (build it, or pass --hymba-convert)"

# 4. Models.
mkdir -p "$MODELS" "$CACHE/hf"
CONVERT_PY="$LLAMA_SRC/convert_hf_to_gguf.py"
for s in "${SIZE_LIST[@]}"; do
    read -r hidden layers heads kvheads ffn <<<"${LLAMA_SHAPE[$s]}"
    f16="$MODELS/llama-$s-f16.gguf"
    need_f16=0
    for t in "${TYPE_LIST[@]}"; do [[ -s "$MODELS/llama-$s-${GGUF_TYPE[$t]}.gguf" ]] || need_f16=1; done
    if [[ $need_f16 == 1 && ! -s "$f16" ]]; then
        hf="$CACHE/hf/llama-$s"
        log "random-weight Llama $s: $hf"
        "$PY" "$BENCH/make_llama_hf.py" --hidden "$hidden" --layers "$layers" --heads "$heads" --kv-heads "$kvheads" \
            --ffn "$ffn" --vocab 32001 --tokenizer "$ROOT/Tests/Fixtures/tiny-code-hymba" --out "$hf" >&2
        log "convert_hf_to_gguf.py → $f16"
        "$PY" "$CONVERT_PY" "$hf" --outtype f16 --outfile "$f16.tmp" >"$CACHE/convert-$s.log" 2>&1 \
            || die "convert_hf_to_gguf.py failed: see $CACHE/convert-$s.log"
        mv "$f16.tmp" "$f16"
        rm -rf "$hf"
    fi
    for t in "${TYPE_LIST[@]}"; do
        g="$MODELS/llama-$s-${GGUF_TYPE[$t]}.gguf"
        if [[ ! -s "$g" ]]; then
            log "llama-quantize --pure ${GGUF_TYPE[$t]} → $g"
            "$LLAMA_QUANTIZE" --pure "$f16" "$g.tmp" "${GGUF_TYPE[$t]}" "$(nproc)" >"$CACHE/quantize-$s-$t.log" 2>&1 \
                || die "llama-quantize failed: see $CACHE/quantize-$s-$t.log"
            mv "$g.tmp" "$g"
        fi
        h="$MODELS/hymba-$s-$t.hymba"
        # Re-synthesized when missing or when this build no longer reads it (format change).
        if [[ ! -s "$h" ]] || ! "$HYMBA_CONVERT" inspect "$h" >/dev/null 2>&1; then
            log "hymba-convert synthesize $s $t → $h"
            "$HYMBA_CONVERT" synthesize --config "$ROOT/Tests/Fixtures/configs/hymba-$s/config.json" --quant "$t" \
                --tokenizer "$ROOT/Tests/Fixtures/tiny-code-hymba" --codec none -o "$h" >"$CACHE/synthesize-$s-$t.log" 2>&1 \
                || die "hymba-convert synthesize failed: see $CACHE/synthesize-$s-$t.log"
        fi
    done
done

if [[ $PREPARE_ONLY == 1 ]]; then
    log "models ready in $MODELS (--prepare-only: nothing measured)"
    exit 0
fi

# 5. Memory read bandwidth.
RUN="$CACHE/runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
load1() { cut -d' ' -f1 /proc/loadavg; }
# Idle share of all CPUs over $1 seconds, in percent (from /proc/stat: idle + iowait jiffies).
# Unlike the load average it is not raised by our own previous run.
idle_percent() {
    local a b
    a=$(awk '/^cpu /{printf "%.0f %.0f\n", $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu /{printf "%.0f %.0f\n", $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 100) }'
}
# Before each measurement: with --wait-idle, wait (up to --wait-max s) until the other jobs
# leave the CPUs that idle; the idle share just before and the wait are recorded.
WAITED=0
IDLE=100
wait_for_quiet() {
    WAITED=0
    IDLE=$(idle_percent 5)
    while ((WAIT_IDLE > 0 && IDLE < WAIT_IDLE && WAITED < WAIT_MAX)); do
        sleep 10; WAITED=$((WAITED + 15))
        IDLE=$(idle_percent 5)
    done
    ((WAITED == 0)) || log "waited ${WAITED}s for the CPUs to be ${WAIT_IDLE}% idle (now ${IDLE}%)"
}
wait_for_quiet
gcc -O3 -march=native -pthread "$BENCH/membw.c" -o "$CACHE/membw"
log "memory read bandwidth (1 and $THREADS threads)"
"$CACHE/membw" 1 1024 10 >"$RUN/membw-1.json"
"$CACHE/membw" "$THREADS" 1024 10 >"$RUN/membw-$THREADS.json"

# 6. Alternating runs: llama.cpp then hymba-edge on odd rounds, the other way on even ones.
# The 1-minute load average before and after each run goes into load.jsonl: on a shared
# machine it says how much the numbers were disturbed.
record_load() { echo "{\"engine\": \"$1\", \"size\": \"$2\", \"type\": \"$3\", \"round\": $4, \"before\": $5, \"after\": $(load1), \"idle_before\": $IDLE, \"waited_seconds\": $WAITED}" >>"$RUN/load.jsonl"; }
run_llama() {
    wait_for_quiet
    local before; before=$(load1)
    "$LLAMA_BENCH" -m "$MODELS/llama-$1-${GGUF_TYPE[$2]}.gguf" -t "$THREADS" -p "$PROMPT" -n "$GEN" -d "$DEPTH" -r "$REPS" -o json \
        >"$RUN/llama-$1-$2-r$3.json" 2>"$RUN/llama-$1-$2-r$3.log" || die "llama-bench failed: see $RUN/llama-$1-$2-r$3.log"
    record_load llama "$1" "$2" "$3" "$before"
}
run_hymba() {
    wait_for_quiet
    local before; before=$(load1)
    env "${HYMBA_ENV[@]}" "$HYMBA_EDGE" bench -m "$MODELS/hymba-$1-$2.hymba" --threads "$THREADS" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" \
        --depth "$DEPTH" --repetitions "$REPS" --json >"$RUN/hymba-$1-$2-r$3.json" 2>"$RUN/hymba-$1-$2-r$3.log" \
        || die "hymba-edge bench failed: see $RUN/hymba-$1-$2-r$3.log"
    record_load hymba "$1" "$2" "$3" "$before"
}
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SIZE_LIST[@]}"; do
        for t in "${TYPE_LIST[@]}"; do
            log "round $r/$ROUNDS: $s $t"
            if ((r % 2 == 1)); then run_llama "$s" "$t" "$r"; run_hymba "$s" "$t" "$r"
            else run_hymba "$s" "$t" "$r"; run_llama "$s" "$t" "$r"; fi
        done
    done
done

# 7. The report.
cat >"$RUN/settings.json" <<EOF
{"sizes": "$SIZES", "types": "$TYPES", "threads": $THREADS, "prompt_tokens": $PROMPT, "gen_tokens": $GEN, "depth": $DEPTH,
 "repetitions": $REPS, "rounds": $ROUNDS, "wait_idle": $WAIT_IDLE, "hymba_edge_revision": "$REVISION", "llama_source": "$LLAMA_SOURCE",
 "backend": "$BACKEND", "hymba_backend_env": "${HYMBA_ENV[*]}", "llama_variant": "$LLAMA_VARIANT", "llama_flags": "$LLAMA_FLAGS",
 "command": "tools/bench/compare-llamacpp.sh$( [[ $BACKEND == native ]] || echo " --backend $BACKEND") --sizes $SIZES --types $TYPES --threads $THREADS --prompt-tokens $PROMPT --gen-tokens $GEN$( ((DEPTH == 0)) || echo " --depth $DEPTH") --repetitions $REPS --rounds $ROUNDS$( ((WAIT_IDLE == 0)) || echo " --wait-idle $WAIT_IDLE --wait-max $WAIT_MAX")"}
EOF
args=(--run "$RUN")
# native results are the main ones (latest.*, the first results block); a forced backend has its own.
if [[ $WRITE == 1 ]]; then args+=(--results "$BENCH/results" --benchmarks-md "$ROOT/BENCHMARKS.md"); fi
"$PY" "$BENCH/report.py" "${args[@]}"
