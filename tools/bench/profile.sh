#!/usr/bin/env bash
# Where hymba-edge's time goes: `perf record -g` on `hymba-edge bench`, prefill and decode
# profiled apart, then the top self-time entries of `perf report --no-children`.
#
#   tools/bench/profile.sh tools/bench/cache/models/hymba-125m-q4.hymba
#   tools/bench/profile.sh --top 25 --threads 1 MODEL
#
# prefill: --prompt-tokens 256 --gen-tokens 1 (the 256-token prefill dominates);
# decode:  --prompt-tokens 1 --gen-tokens 256 (single-token decodes over a context growing to 256,
#          as in the benchmark's decodes after a 256-token prefill).
# Both profiles also hold the one-time work of opening the model: mapping, checksums and the
# meta-token prefix (the model's M meta tokens run once through every layer, a MatMul-heavy
# prefill), which is why MatMul shows up in the decode profile too.
# The perf.data files and full reports go to tools/bench/cache/profiles/ (git-ignored).
# Needs perf (Debian: apt-get install linux-perf) and a kernel.perf_event_paranoid that lets
# this user sample (≤ 2 for its own processes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/tools/bench/cache/profiles"
TOP=20
THREADS=2
PROMPT=256
GEN=256
HYMBA_EDGE="$ROOT/.build/release/hymba-edge"

usage() {
    cat <<EOF
usage: $0 [--top N] [--threads N] [--prompt-tokens N] [--gen-tokens N] [--hymba-edge PATH] MODEL.hymba
  --top N            self-time entries shown per phase (default: $TOP)
  --threads N        hymba-edge bench --threads (default: $THREADS)
  --prompt-tokens N  prefill length of the prefill profile (default: $PROMPT)
  --gen-tokens N     decodes of the decode profile (default: $GEN)
  --hymba-edge PATH  the binary (default: .build/release/hymba-edge; build with swift build -c release)
EOF
}

MODEL=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --top) TOP="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --prompt-tokens) PROMPT="$2"; shift 2 ;;
        --gen-tokens) GEN="$2"; shift 2 ;;
        --hymba-edge) HYMBA_EDGE="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [[ -z "$MODEL" ]] || { echo "error: one model only ($MODEL, $1)" >&2; exit 2; }; MODEL="$1"; shift ;;
    esac
done
die() { echo "error: $*" >&2; exit 1; }
[[ -n "$MODEL" ]] || { usage >&2; exit 2; }
[[ -s "$MODEL" ]] || die "$MODEL: no such model file"
[[ -x "$HYMBA_EDGE" ]] || die "$HYMBA_EDGE: not an executable (swift build -c release, or pass --hymba-edge)"
command -v perf >/dev/null || die "perf not found (Debian: apt-get install linux-perf)"
for n in TOP THREADS PROMPT GEN; do
    [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "--$(echo "$n" | tr 'A-Z' 'a-z'): ${!n} is not a positive integer"
done

mkdir -p "$OUT"
name="$(basename "$MODEL" .hymba)"
for phase in prefill decode; do
    if [[ $phase == prefill ]]; then args=(--prompt-tokens "$PROMPT" --gen-tokens 1)
    else args=(--prompt-tokens 1 --gen-tokens "$GEN"); fi
    data="$OUT/$name-$phase.perf.data"
    report="$OUT/$name-$phase.txt"
    echo "== $name $phase: hymba-edge bench ${args[*]} --repetitions 1 --threads $THREADS (load avg $(cut -d' ' -f1-3 /proc/loadavg))"
    perf record -q -g -o "$data" -- "$HYMBA_EDGE" bench -m "$MODEL" "${args[@]}" --repetitions 1 --threads "$THREADS" \
        2>"$OUT/$name-$phase.record.log" | grep -E '^(prefill|decode) ' || die "perf record failed: see $OUT/$name-$phase.record.log"
    perf report -i "$data" --no-children --stdio --sort symbol -g none --percent-limit 0.5 2>/dev/null >"$report"
    # The top entries, demangled and shortened to the function (Swift's full signatures are long).
    grep -E '^ +[0-9.]+%' "$report" | head -n "$TOP" | sed -E 's/\[\.\] //; s/ +$//' \
        | { if command -v swift >/dev/null; then swift demangle --simplified --compact; else cat; fi; } \
        | sed -E 's/\(.*$//; s/( +-)+ *$//; s/[[:space:]]+$//' | cut -c1-150
    echo "   (full report: $report)"
done
