#!/usr/bin/env bash
# How the KV cache's logit error on the fixtures depends on the bits per element.
#
# Applies simulate-bits.patch to a temporary copy of this checkout (the f32 cache rounds every
# stored key and value to b-bit codes with one scale per position and head, optionally clipped
# at a fraction of the max), then prints max |Δlogit| against NVIDIA's logits for each setting.
# The product never contains this hook; it only answers "how many bits would q8 need?".
#
# Usage: tools/kv-bits/run.sh [BITS ...]          (default: 8 9 10 11 12)
#        CLIPS="1 0.9" tools/kv-bits/run.sh 8     (also try clipping the scale)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bits=("$@"); [ ${#bits[@]} -gt 0 ] || bits=(8 9 10 11 12)
clips=(${CLIPS:-1})

work="$(mktemp -d)"
trap 'git -C "$repo" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add --detach "$work/src" HEAD >/dev/null
cd "$work/src"
git apply "$here/simulate-bits.patch"
swift build -c release -Xswiftc -enable-testing --build-tests >/dev/null
for c in "${clips[@]}"; do
    for b in "${bits[@]}"; do
        SIM_BITS=$b SIM_CLIP=$c swift test -c release -Xswiftc -enable-testing --skip-build \
            --filter SimulatedKVBitsTests 2>&1 | grep '\[kv-bits\]'
    done
done
