#!/usr/bin/env python3
"""Checks `hymba-edge serve` with the official `openai` Python package, as an app would use it.

Makes a virtual environment with `openai` (under $TMPDIR, reused between runs), starts the
server on a free loopback port with the shipped model and an API key, then checks: the model
list, completions and chat completions whole and streamed (with stream_options.include_usage),
that greedy completion text equals `hymba-edge run --temp 0` on the same prompt, and that an
out-of-range field comes back as openai.BadRequestError. Prints "N passed, M failed" and exits
non-zero on any failure. The server is always stopped; every wait is bounded.

    python3 tools/server/openai_check.py [--binary .build/release/hymba-edge]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "tiny-code-hymba-q8.hymba")
MODEL_ID = "tiny-code-hymba-q8"
CTX = 256
KEY = "openai-check-key"
PROMPTS = ["def fibonacci(n):", "import os\n", "class Stack:\n    def push(self, x):"]


def ensure_openai():
    """Re-runs this script inside a venv that has the openai package."""
    try:
        import openai  # noqa: F401
        return
    except ImportError:
        pass
    env_dir = os.path.join(tempfile.gettempdir(), "hymba-openai-check-venv")
    python = os.path.join(env_dir, "bin", "python")
    if not os.path.exists(python):
        venv.create(env_dir, with_pip=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "openai>=1.30"], check=True, timeout=600)
    os.execv(python, [python] + sys.argv)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, port):
    proc = subprocess.Popen(
        [binary, "serve", "-m", MODEL, "--host", "127.0.0.1", "--port", str(port), "--parallel", "2",
         "--ctx", str(CTX), "--threads", "2", "--api-key", KEY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line:
            print("server:", line.strip())
            if "listening on" in line:
                return proc
        elif proc.poll() is not None:
            raise RuntimeError("the server exited: " + proc.stderr.read())
    proc.kill()
    raise RuntimeError("the server did not become ready in 180 s")


def cli_greedy(binary, prompt, tokens):
    r = subprocess.run([binary, "run", "-m", MODEL, "-p", prompt, "-n", str(tokens), "--temp", "0", "--no-echo",
                        "--ctx", str(CTX), "--threads", "2"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("hymba-edge run failed: " + r.stderr)
    return r.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "hymba-edge"))
    args = parser.parse_args()
    ensure_openai()
    import openai

    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))

    port = free_port()
    server = start_server(args.binary, port)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, timeout=120, max_retries=0)
        models = client.models.list()
        check("models.list names the served model", [m.id for m in models.data] == [MODEL_ID], str(models))

        for prompt in PROMPTS:
            expected = cli_greedy(args.binary, prompt, 24)
            c = client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=24, temperature=0)
            check(f"completion of {prompt!r} equals `run --temp 0`", c.choices[0].text == expected,
                  f"server {c.choices[0].text!r} vs run {expected!r}")
            check(f"completion of {prompt!r} has usage", c.usage is not None and c.usage.completion_tokens >= 1
                  and c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, str(c.usage))
            chunks = list(client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=24, temperature=0, stream=True,
                                                    stream_options={"include_usage": True}))
            text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
            check(f"streamed completion of {prompt!r} equals `run --temp 0`", text == expected, f"{text!r} vs {expected!r}")
            check("the last streamed chunk carries usage", chunks[-1].usage is not None and not chunks[-1].choices,
                  str(chunks[-1]))

        messages = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Reverse a string."}]
        chat = client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=20, temperature=0)
        content = chat.choices[0].message.content
        check("chat completion answers as the assistant", chat.choices[0].message.role == "assistant" and content is not None
              and chat.choices[0].finish_reason in ("stop", "length"), str(chat))
        stream = client.chat.completions.create(model=MODEL_ID, messages=messages, max_tokens=20, temperature=0, stream=True)
        streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
        check("streamed chat equals the whole answer", streamed == content, f"{streamed!r} vs {content!r}")

        try:
            client.completions.create(model=MODEL_ID, prompt="x", max_tokens=4, temperature=5)
            check("temperature 5 is refused", False, "no error")
        except openai.BadRequestError as e:
            check("temperature 5 is refused with a 400 naming the field", "temperature" in str(e), str(e))
        try:
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
            check("a wrong API key is refused", False, "no error")
        except openai.AuthenticationError:
            check("a wrong API key is refused with 401", True)
    except Exception as e:  # a crash of the check is a failure, reported like the others
        check("the checks ran to the end", False, repr(e))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)

    failed = results.count(False)
    print(f"openai_check: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
