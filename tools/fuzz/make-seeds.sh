#!/usr/bin/env bash
# Writes the fuzzer's seed corpus: small valid .hymba files of two nano configs (every storage
# type, every codec, with the 20-token tokenizer of the tokenizer-edge fixture or none), plus
# the format's example files. Uses the main package's release hymba-convert.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/corpus-seed}"
convert="$root/.build/release/hymba-convert"
[ -x "$convert" ] || (cd "$root" && swift build -c release --product hymba-convert)
mkdir -p "$out"
tok="$root/Tests/Fixtures/tokenizer-edge"
n=0
seed() {  # name config codec quant [--keep ...]
    local name=$1 config=$2 codec=$3 quant=$4; shift 4
    "$convert" synthesize --config "$here/$config" -o "$out/$name.hymba" --seed 3 --codec "$codec" --quant "$quant" "$@" >/dev/null
    n=$((n + 1))
}
seed nano-zstd-mixed nano-config.json zstd q4 --tokenizer "$tok" \
    --keep '*.out_proj.weight=q8' --keep '*.x_proj.0.weight=bf16' --keep 'lm_head.weight=f16'
seed nano-lz4-q4 nano-config.json lz4 q4 --tokenizer "$tok"
seed nano-zstd-q8 nano-config.json zstd q8 --tokenizer "$tok"
seed nano-zstd-f32 nano-config.json zstd f32
seed nano-tied-zstd-bf16 nano-tied-config.json zstd bf16 --tokenizer "$tok"
seed nano-tied-lz4-f16 nano-tied-config.json lz4 f16
seed nano-none-q8 nano-config.json none q8 --tokenizer "$tok"
cp "$root"/formats/examples/*.hymba "$out/"
echo "$out: $((n + 2)) seed files"
