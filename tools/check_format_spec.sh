#!/usr/bin/env bash
# Checks hymba-convert's output against formats/HYMBA-FORMAT.md with the independent Python
# reader formats/read_hymba.py (written from the specification alone): converts the
# tiny-hymba-untied and tiny-hymba fixtures in every storage type and codec, then runs the
# reader's --verify (checksums, §8 validation, decoding, conformance) and
# --compare-safetensors (every tensor against the source checkpoint) on each file.
# Also checks that converting twice gives byte-identical files (§1 "Deterministic") and
# that a --precompute-prefix file with a --keep override reads and compares.
#
# Usage: tools/check_format_spec.sh [path/to/hymba-convert]   (default .build/debug/hymba-convert)
# Environment: QUANTS="q4 q8 bf16 f16 f32" and CODECS="zstd lz4 none" restrict the matrix;
# KEEP_FILES=1 keeps the converted files (their directory is printed).
# Exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
CONVERT=${1:-.build/debug/hymba-convert}
[ -x "$CONVERT" ] || { echo "check_format_spec: converter '$CONVERT' not found or not executable (build it: swift build --product hymba-convert)" >&2; exit 2; }
CONVERT=$(cd "$(dirname "$CONVERT")" && pwd)/$(basename "$CONVERT")
READER="$ROOT/formats/read_hymba.py"
FIXTURES="$ROOT/Tests/Fixtures"
QUANTS=${QUANTS:-"f32 bf16 f16 q8 q4"}
CODECS=${CODECS:-"none zstd lz4"}

PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, zstandard, lz4.block" 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check numpy zstandard lz4 >/dev/null 2>&1 \
        || "$PY" -m pip install --quiet --disable-pip-version-check --user numpy zstandard lz4 >/dev/null 2>&1
    "$PY" -c "import numpy, zstandard, lz4.block" \
        || { echo "check_format_spec: could not install numpy, zstandard and lz4 with pip" >&2; exit 2; }
fi
# xxhash only makes checksumming faster; the reader has a pure-Python XXH64.
"$PY" -c "import xxhash" 2>/dev/null \
    || "$PY" -m pip install --quiet --disable-pip-version-check xxhash >/dev/null 2>&1 || true

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-format-spec.XXXXXX")
if [ "${KEEP_FILES:-0}" = 1 ]; then
    echo "files kept in $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# check FILE FIXTURE: the reader's --verify and --compare-safetensors
check() {
    local file=$1 fixture=$2 log
    log="$file.log"
    checks=$((checks + 1))
    if ! "$PY" "$READER" -q --verify "$file" > "$log" 2>&1; then
        fail "$(basename "$file"): read_hymba.py --verify"; sed 's/^/    /' "$log" | grep -v '^    verify: header' | head -20
        return
    fi
    if ! "$PY" "$READER" -q --compare-safetensors "$FIXTURES/$fixture" "$file" > "$log" 2>&1; then
        fail "$(basename "$file"): read_hymba.py --compare-safetensors $fixture"
        grep -E 'FAIL|^compare:|Error|error' "$log" | sed 's/^/    /' | head -20
        return
    fi
    printf '  ok  %-40s %s\n' "$(basename "$file")" "$(tail -1 "$log")"
}

convert() {  # convert FIXTURE OUT ARGS...
    local fixture=$1 out=$2; shift 2
    if ! "$CONVERT" "$FIXTURES/$fixture" -o "$out" "$@" > "$out.convert.log" 2>&1; then
        fail "hymba-convert $fixture $* exited non-zero"; tail -5 "$out.convert.log" | sed 's/^/    /'
        return 1
    fi
}

for fixture in tiny-hymba-untied tiny-hymba; do
    for quant in $QUANTS; do
        for codec in $CODECS; do
            out="$WORK/$fixture-$quant-$codec.hymba"
            convert "$fixture" "$out" --quant "$quant" --codec "$codec" && check "$out" "$fixture"
        done
    done
done

# Determinism (§1): the same inputs and settings give byte-identical files (q8 + zstd when
# in the matrix: quantization and compression both take part).
det_quant=""; det_codec=${CODECS%% *}
for q in $QUANTS; do [ "$q" = q8 ] && det_quant=q8; done
[ -z "$det_quant" ] && for q in $QUANTS; do [ "$q" != q4 ] && { det_quant=$q; break; }; done
for c in $CODECS; do [ "$c" = zstd ] && det_codec=zstd; done
a="$WORK/tiny-hymba-untied-$det_quant-$det_codec.hymba"
if [ -n "$det_quant" ] && [ -f "$a" ]; then
    b="$WORK/again-$det_quant-$det_codec.hymba"
    checks=$((checks + 1))
    if convert tiny-hymba-untied "$b" --quant "$det_quant" --codec "$det_codec"; then
        if cmp -s "$a" "$b"; then
            printf '  ok  %-40s byte-identical on reconversion\n' "$(basename "$a")"
        else
            fail "$(basename "$a"): a second conversion is not byte-identical ($(cmp "$a" "$b" 2>&1 | head -1))"
        fi
    fi
    rm -f "$b"
fi

# Derived tensors (§5 hymba.meta_prefix.*) and a --keep override.
out="$WORK/tiny-hymba-prefix-q8-lz4.hymba"
convert tiny-hymba "$out" --quant q8 --codec lz4 --precompute-prefix --keep '*.out_proj.weight=f16' \
    && check "$out" tiny-hymba

# Bits per weight (§ "Bits per weight"): the reader's figure is the one hymba-convert inspect prints.
for file in "$WORK/tiny-hymba-untied-q4-zstd.hymba" "$out"; do
    [ -f "$file" ] || continue
    checks=$((checks + 1))
    ours=$("$CONVERT" inspect --json "$file" | "$PY" -c "import json, sys; print('%.6f' % json.load(sys.stdin)['totals']['bits_per_weight'])")
    theirs=$("$PY" "$READER" "$file" | sed -n 's/^bits per weight: //p')
    if [ -n "$ours" ] && [ "$ours" = "$theirs" ]; then
        printf '  ok  %-40s bits per weight %s in both readers\n' "$(basename "$file")" "$ours"
    else
        fail "$(basename "$file"): bits per weight: inspect says '$ours', read_hymba.py '$theirs'"
    fi
done

echo "check_format_spec: $checks checks, $failures failures"
[ "$failures" = 0 ]
