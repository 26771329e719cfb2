#!/usr/bin/env bash
# Builds tools/fuzz/.build/release/hymba-fuzz-reader: coverage for libFuzzer and AddressSanitizer
# in every Swift target (the reader, codecs, tokenizer and runtime). lld links it: gold fails
# with an internal error on this sanitizer link.
set -euo pipefail
cd "$(dirname "$0")"
nice -n 10 swift build -c release --product hymba-fuzz-reader \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld
