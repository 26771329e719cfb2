#!/usr/bin/env python3
"""The official `openai` package pointed at `hymba-edge serve` (pip install openai).

    hymba-edge serve --port 8080 &
    python3 Examples/server/openai_client.py [http://127.0.0.1:8080/v1]
"""
import os
import sys

from openai import OpenAI

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1"
# The server wants a key only when started with --api-key; the package always sends one.
client = OpenAI(base_url=base, api_key=os.environ.get("HYMBA_API_KEY", "unused"))

model = client.models.list().data[0].id
print("model:", model)

completion = client.completions.create(model=model, prompt="def fibonacci(n):", max_tokens=32, temperature=0)
print(completion.choices[0].text)
print("usage:", completion.usage)

stream = client.chat.completions.create(
    model=model, stream=True, max_tokens=48, temperature=0.7, seed=42,
    messages=[{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Sort a dict by value."}])
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
