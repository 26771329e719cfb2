#!/usr/bin/env bash
# Hymba's side of BENCHMARKS.md "Saved state": for a conversation of 1K, 4K and 8K tokens,
# the state file's size, the time to save it and restore-to-first-token against re-prefilling
# the same tokens (`hymba-edge state-bench`). llama.cpp's state files of the equal-size Llama
# come from tools/bench/state-size.sh.
#   tools/bench/state-bench.sh MODEL.hymba [THREADS] [TOKENS...]     (default 2 threads, 1024 4096 8192)
# The model: `hymba-convert synthesize --config Tests/Fixtures/configs/hymba-1.5b/config.json
#   --quant q4 --codec none -o MODEL.hymba --tokenizer Tests/Fixtures/tiny-hymba/tokenizer.json`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="${1:?usage: state-bench.sh MODEL.hymba [THREADS] [TOKENS...]}"
threads="${2:-2}"
shift $(( $# >= 2 ? 2 : 1 ))
tokens=("$@")
[ ${#tokens[@]} -gt 0 ] || tokens=(1024 4096 8192)
edge="${HYMBA_EDGE:-$root/.build/release/hymba-edge}"
[ -x "$edge" ] || (cd "$root" && swift build -c release --product hymba-edge)
echo "# hymba-edge $(cd "$root" && git rev-parse --short HEAD), $(basename "$model"), $threads threads, $(date -u +%Y-%m-%dT%H:%MZ)"
for kv in f16 q8; do
    nice -n 5 "$edge" state-bench -m "$model" --kv-type "$kv" --threads "$threads" --tokens "${tokens[@]}"
done
