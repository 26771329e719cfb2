#!/usr/bin/env bash
# The main job: convert a Hugging Face Hymba checkpoint to a .hymba file, inspect it, and run it.
#   tools/demo.sh [CHECKPOINT_DIR] [QUANT] [PROMPT]
# With no arguments it converts the small model shipped in the repository
# (Tests/Fixtures/tiny-code-hymba, trained on Python source) at q8 and continues a Python prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint="${1:-Tests/Fixtures/tiny-code-hymba}"
quant="${2:-q8}"
prompt="${3:-def fibonacci(n):}"
out="${TMPDIR:-/tmp}/$(basename "$checkpoint")-$quant.hymba"

tools/check-system-libraries.sh
# The same flags as the README's test command (swift test -c release -Xswiftc -enable-testing),
# so that one build serves both: after this script the tests only build the test targets, and
# after the tests this script builds nothing.
flags=(-c release -Xswiftc -enable-testing)
swift build "${flags[@]}" --product hymba-convert >&2
swift build "${flags[@]}" --product hymba-edge >&2
bin="$(swift build "${flags[@]}" --show-bin-path)"
"$bin/hymba-convert" "$checkpoint" -o "$out" --quant "$quant"
"$bin/hymba-convert" verify "$out"
"$bin/hymba-convert" inspect "$out"
echo
echo "== hymba-edge run -m $out -p \"$prompt\" -n 64 --temp 0"
"$bin/hymba-edge" run -m "$out" -p "$prompt" -n 64 --temp 0
