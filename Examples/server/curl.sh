#!/usr/bin/env bash
# Talks to a running `hymba-edge serve` with curl: health, models, a completion, a streamed chat.
#   hymba-edge serve --port 8080 &        # the shipped model; prints a line when ready
#   Examples/server/curl.sh [http://127.0.0.1:8080]
set -euo pipefail
BASE=${1:-http://127.0.0.1:8080}
AUTH=()
if [ -n "${HYMBA_API_KEY:-}" ]; then AUTH=(-H "Authorization: Bearer $HYMBA_API_KEY"); fi

curl -s "$BASE/health"; echo
curl -s "${AUTH[@]}" "$BASE/v1/models"; echo

# A greedy completion (temperature 0): the same text as `hymba-edge run -p ... --temp 0`.
curl -s "${AUTH[@]}" "$BASE/v1/completions" -H 'Content-Type: application/json' -d '{
  "model": "tiny-code-hymba-q8", "prompt": "def fibonacci(n):", "max_tokens": 32, "temperature": 0
}'; echo

# A streamed chat answer: Server-Sent Events, one `data: {chunk}` per piece, then `data: [DONE]`.
curl -sN "${AUTH[@]}" "$BASE/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "tiny-code-hymba-q8", "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 32,
  "messages": [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Reverse a list."}]
}'
