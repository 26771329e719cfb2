#!/usr/bin/env bash
# Builds tools/fuzz/.build/release/hymba-fuzz-reader and hymba-fuzz-state: coverage for libFuzzer and AddressSanitizer
# in every Swift target (the reader, codecs, tokenizer and runtime). lld links it: gold fails
# with an internal error on this sanitizer link.
set -euo pipefail
cd "$(dirname "$0")"
for product in hymba-fuzz-reader hymba-fuzz-state; do
    nice -n 10 swift build -c release --product "$product" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld
done
