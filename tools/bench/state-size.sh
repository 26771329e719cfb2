#!/usr/bin/env bash
# llama.cpp's saved state for the Llama of a Hymba size (default the 1.5B Q4_0) at 1K, 4K and 8K
# tokens of context: llama-server (native build of the benchmark's cache, one slot, context just
# above the longest, f16 KV, 2 threads, no host-memory prompt cache) saves and restores its slot;
# state_size.py prints the file sizes, save and restore times, and restore-to-first-token against
# the prefill, and writes tools/bench/results/state-llamacpp-SIZE-TYPE.json (or --out).
#
#   tools/bench/state-size.sh                       # 1.5b Q4_0, 1024,4096,8192 tokens
#   tools/bench/state-size.sh --size 350m --contexts 1024
#   tools/bench/state-size.sh --method cli          # llama-completion --prompt-cache files instead
#
# The model comes from compare-llamacpp.sh --prepare-only ($HYMBA_BENCH_CACHE/models).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/tools/bench"
# shellcheck source=tools/bench/llamacpp.sh
source "$BENCH/llamacpp.sh"

SIZE=1.5b
TYPE=q4
CONTEXTS=1024,4096,8192
THREADS=2
LLAMA_VARIANT=native
METHOD=server
OUT=""

usage() {
    cat <<EOF
usage: $0 [options]
  --size S          125m, 350m or 1.5b (default: $SIZE)
  --type T          q4 (Q4_0) or q8 (Q8_0) (default: $TYPE)
  --contexts LIST   context lengths in tokens (default: $CONTEXTS)
  --threads N       server threads (default: $THREADS)
  --method M        server (llama-server slot save/restore, default) or cli (llama-completion
                    --prompt-cache: the file llama-cli users get; no separate save time)
  --llama-variant V   llama.cpp build: native (default) or avx2 (llamacpp.sh)
  --out FILE        the JSON (default: tools/bench/results/state-llamacpp[-avx2]-SIZE-TYPE.json)
environment: HYMBA_BENCH_CACHE=DIR  the benchmark cache (default $BENCH/cache)
EOF
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) SIZE="$2"; shift 2 ;;
        --type) TYPE="$2"; shift 2 ;;
        --contexts) CONTEXTS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --llama-variant) LLAMA_VARIANT="$2"; shift 2 ;;
        --method) METHOD="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
declare -A GGUF_TYPE=([q4]=Q4_0 [q8]=Q8_0)
[[ -n "${GGUF_TYPE[$TYPE]:-}" ]] || die "--type: unknown type '$TYPE' (q4, q8)"
[[ "$SIZE" =~ ^(125m|350m|1\.5b)$ ]] || die "--size: unknown size '$SIZE' (125m, 350m, 1.5b)"
[[ "$CONTEXTS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--contexts: $CONTEXTS is not a list of positive integers"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads: $THREADS is not a positive integer"
[[ "$METHOD" == server || "$METHOD" == cli ]] || die "--method: '$METHOD' is not server or cli"

bench_venv
if [[ $METHOD == cli ]]; then llama_build "$LLAMA_VARIANT" llama-completion; else llama_build "$LLAMA_VARIANT" llama-server; fi
MODEL="$MODELS/llama-$SIZE-${GGUF_TYPE[$TYPE]}.gguf"
[[ -s "$MODEL" ]] || die "$MODEL: missing (tools/bench/compare-llamacpp.sh --sizes $SIZE --types $TYPE --prepare-only makes it)"
NAME=llamacpp
[[ $LLAMA_VARIANT == native ]] || NAME+="-$LLAMA_VARIANT"
[[ $METHOD == server ]] || NAME+="-$METHOD"
OUT="${OUT:-$BENCH/results/state-$NAME-$SIZE-$TYPE.json}"
SAVE_DIR="$CACHE/state/slots"
mkdir -p "$SAVE_DIR" "$(dirname "$OUT")"
LONGEST=$(tr , '\n' <<<"$CONTEXTS" | sort -n | tail -1)
if [[ $METHOD == cli ]]; then
    exec "$PY" "$BENCH/state_size.py" --cli "$LLAMA_BUILD/bin/llama-completion" --model "$MODEL" --threads "$THREADS" \
        --save-dir "$CACHE/state/cli" --contexts "$CONTEXTS" --out "$OUT" \
        --label "llama-completion ($LLAMA_VARIANT) $SIZE ${GGUF_TYPE[$TYPE]} --prompt-cache, f16 KV, $THREADS threads"
fi
PORT="$(free_port)"
# One slot holding the longest prompt and the 1 generated token; --cache-ram 0: a restored slot is
# the only place the prompt's state can come from.
SERVER=("$LLAMA_BUILD/bin/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -np 1 -c "$((LONGEST + 256))"
        -t "$THREADS" -tb "$THREADS" --slot-save-path "$SAVE_DIR/" --cache-ram 0)
start_server "$CACHE/state/$NAME-$SIZE-$TYPE.log" "${SERVER[@]}"
"$PY" "$BENCH/state_size.py" --port "$PORT" --pid "$SERVER_PID" --save-dir "$SAVE_DIR" --contexts "$CONTEXTS" \
    --label "llama-server ($LLAMA_VARIANT) $SIZE ${GGUF_TYPE[$TYPE]}, f16 KV, $THREADS threads" --server-command "${SERVER[*]#"$CACHE/"}" --out "$OUT"
