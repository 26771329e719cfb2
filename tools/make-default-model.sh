#!/usr/bin/env bash
# Regenerates the default model of `hymba-edge run` / `chat`: the shipped checkpoint
# Tests/Fixtures/tiny-code-hymba converted at q8 with the release hymba-convert, written to
# models/tiny-code-hymba-q8.hymba. The conversion is deterministic: rerunning it with the
# same converter gives the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product hymba-convert >&2
bin="$(swift build -c release --show-bin-path)"
mkdir -p models
"$bin/hymba-convert" Tests/Fixtures/tiny-code-hymba -o models/tiny-code-hymba-q8.hymba --quant q8
"$bin/hymba-convert" verify models/tiny-code-hymba-q8.hymba
