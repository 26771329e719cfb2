#!/usr/bin/env bash
# A bounded load on an OpenAI-compatible server on loopback: starts llama.cpp's llama-server or
# `hymba-edge serve` on a model of the benchmark's cache, runs serve_load.py against it (1, 2, 4, 8
# concurrent clients of 64-token streamed completions, a fixed number of requests per level),
# stops the server, and writes the JSON.
#
#   tools/bench/serve-load.sh --engine llamacpp --size 350m             # llama-server -np 4, Q4_0
#   tools/bench/serve-load.sh --engine hymba --size 1.5b --hymba-edge .build/release/hymba-edge
#   tools/bench/serve-load.sh --chart A.json B.json -o chart.png       # two results side by side
#
# Models come from compare-llamacpp.sh --prepare-only (in $HYMBA_BENCH_CACHE/models, default
# tools/bench/cache/models); llama-server is built there the first time (llamacpp.sh, native).
# Results: tools/bench/results/serve-ENGINE-SIZE-TYPE.json unless --out.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tools/bench"
# shellcheck source=tools/bench/llamacpp.sh
source "$BENCH/llamacpp.sh"

ENGINE=""
SIZE=350m
TYPE=q4
THREADS=2
LLAMA_VARIANT=native
PARALLEL=4
CTX=1024
REQUESTS=16
CONCURRENCY=1,2,4,8
MAX_TOKENS=64
HYMBA_EDGE=""
BACKEND=""
OUT=""

usage() {
    cat <<EOF
usage: $0 --engine llamacpp|hymba [options]
       $0 --chart A.json B.json [...] -o OUT.png
  --engine NAME       llamacpp (llama-server on the Llama GGUF) or hymba (hymba-edge serve on the .hymba)
  --size S            125m, 350m or 1.5b (default: $SIZE)
  --type T            q4 (Q4_0) or q8 (Q8_0) (default: $TYPE)
  --threads N         server threads (default: $THREADS)
  --parallel N        server slots: llama-server -np N, hymba-edge serve --parallel N (default: $PARALLEL)
  --ctx N             context per slot: llama-server -c N*parallel, hymba-edge serve --ctx N (default: $CTX)
  --requests N        requests per concurrency level (default: $REQUESTS)
  --concurrency LIST  client counts (default: $CONCURRENCY)
  --max-tokens N      completion tokens per request (default: $MAX_TOKENS)
  --hymba-edge PATH   the hymba-edge binary (default: .build/release/hymba-edge)
  --backend NAME      HYMBA_BACKEND for hymba-edge (default: the binary's choice)
  --llama-variant V   llama.cpp build: native (default) or avx2 (llamacpp.sh)
  --out FILE          the JSON (default: tools/bench/results/serve-ENGINE[-avx2]-SIZE-TYPE.json)
environment: HYMBA_BENCH_CACHE=DIR  the benchmark cache (default $BENCH/cache)
EOF
}

if [[ "${1:-}" == --chart ]]; then
    shift
    bench_venv
    exec "$PY" "$BENCH/serve_load.py" chart "$@"
fi

while [[ $# -gt 0 ]]; do
    case "$1" in
        --engine) ENGINE="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --type) TYPE="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --parallel) PARALLEL="$2"; shift 2 ;;
        --ctx) CTX="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --max-tokens) MAX_TOKENS="$2"; shift 2 ;;
        --hymba-edge) HYMBA_EDGE="$2"; shift 2 ;;
        --backend) BACKEND="$2"; shift 2 ;;
        --llama-variant) LLAMA_VARIANT="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in THREADS PARALLEL CTX REQUESTS MAX_TOKENS; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "--$(echo "$n" | tr 'A-Z_' 'a-z-'): ${!n} is not a positive integer"
done
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--concurrency: $CONCURRENCY is not a list of positive integers"
declare -A GGUF_TYPE=([q4]=Q4_0 [q8]=Q8_0)
[[ -n "${GGUF_TYPE[$TYPE]:-}" ]] || die "--type: unknown type '$TYPE' (q4, q8)"
[[ "$SIZE" =~ ^(125m|350m|1\.5b)$ ]] || die "--size: unknown size '$SIZE' (125m, 350m, 1.5b)"

bench_venv
PORT="$(free_port)"
case "$ENGINE" in
    llamacpp)
        llama_build "$LLAMA_VARIANT" llama-server
        MODEL="$MODELS/llama-$SIZE-${GGUF_TYPE[$TYPE]}.gguf"
        SERVER=("$LLAMA_BUILD/bin/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -np "$PARALLEL"
                -c "$((CTX * PARALLEL))" -t "$THREADS" -tb "$THREADS")
        LABEL="llama-server ($LLAMA_VARIANT) $SIZE ${GGUF_TYPE[$TYPE]}, -np $PARALLEL, $THREADS threads"
        ;;
    hymba)
        HYMBA_EDGE="${HYMBA_EDGE:-$ROOT/.build/release/hymba-edge}"
        [[ -x "$HYMBA_EDGE" ]] || die "$HYMBA_EDGE: not an executable (swift build -c release, or pass --hymba-edge)"
        MODEL="$MODELS/hymba-$SIZE-$TYPE.hymba"
        SERVER=()
        [[ -z "$BACKEND" ]] || SERVER=(env "HYMBA_BACKEND=$BACKEND")
        SERVER+=("$HYMBA_EDGE" serve -m "$MODEL" --host 127.0.0.1 --port "$PORT" --parallel "$PARALLEL" --ctx "$CTX"
                --threads "$THREADS")
        LABEL="hymba-edge serve $SIZE $TYPE, --parallel $PARALLEL, $THREADS threads"
        ;;
    *) die "--engine: '$ENGINE' is not llamacpp or hymba" ;;
esac
[[ -s "$MODEL" ]] || die "$MODEL: missing (tools/bench/compare-llamacpp.sh --sizes $SIZE --types $TYPE --prepare-only makes it)"
NAME="$ENGINE"
[[ $ENGINE != llamacpp || $LLAMA_VARIANT == native ]] || NAME+="-$LLAMA_VARIANT"
OUT="${OUT:-$BENCH/results/serve-$NAME-$SIZE-$TYPE.json}"
mkdir -p "$(dirname "$OUT")" "$CACHE/serve"
SERVER_LOG="$CACHE/serve/$NAME-$SIZE-$TYPE.log"

start_server "$SERVER_LOG" "${SERVER[@]}"
status=0
"$PY" "$BENCH/serve_load.py" run --port "$PORT" --pid "$SERVER_PID" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
    --max-tokens "$MAX_TOKENS" --label "$LABEL" --server-command "${SERVER[*]#"$CACHE/"}" --out "$OUT" || status=$?
kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited during the load: see $SERVER_LOG"
exit "$status"
