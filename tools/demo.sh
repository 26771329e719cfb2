#!/usr/bin/env bash
# The main job: convert a Hugging Face Hymba checkpoint to a .hymba file and inspect it.
#   tools/demo.sh [CHECKPOINT_DIR] [QUANT]
# With no arguments it converts the small model shipped in the repository
# (Tests/Fixtures/tiny-code-hymba) at q8.
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint="${1:-Tests/Fixtures/tiny-code-hymba}"
quant="${2:-q8}"
out="${TMPDIR:-/tmp}/$(basename "$checkpoint")-$quant.hymba"

swift build -c release --product hymba-convert >&2
bin="$(swift build -c release --show-bin-path)"
"$bin/hymba-convert" "$checkpoint" -o "$out" --quant "$quant"
"$bin/hymba-convert" verify "$out"
"$bin/hymba-convert" inspect "$out"
