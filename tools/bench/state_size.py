#!/usr/bin/env python3
"""llama.cpp's saved state at several context lengths, through llama-server's slot save and
restore (started by state-size.sh with -np 1, --slot-save-path and --cache-ram 0), standard
library only.

For each context length N (default 1024, 4096, 8192), on slot 0:
  1. erase the slot, then prefill N token ids (pseudo-random in the vocabulary, fixed seed, the
     same ids at every N) with a 1-token /completion: the prefill time is the server's prompt_ms;
  2. save the slot (POST /slots/0?action=save): the file's size, the server's save_ms;
  3. erase the slot, restore the file (action=restore): restore_ms;
  4. the same 1-token /completion again: how many prompt tokens the server processed after the
     restore (1 if it reused the restored state), and the time from the start of the restore to
     the end of this request (restore to first token), against step 1's whole request.
The numbers are printed and written as JSON.

With --cli PATH (llama-completion, the classic CLI with --prompt-cache) instead of a server: for
each N, a prompt of exactly N tokens (BOS and N-1 times "the", each one token in Llama's
tokenizer; the count is read back from the file's header) is run with `-n 1 --prompt-cache FILE`
(prefill, the state saved before the last prompt token, which the next run replays), then run
again: the second run loads the file and replays one token. Timed: the first run's prompt eval
(llama.cpp's own timing) and the second run's time from "attempting to load saved session" to
"replayed last token" on its log (restore to first token). Save time is not separable here.
"""
import argparse
import http.client
import json
import os
import random
import re
import struct
import subprocess
import sys
import time

from serve_load import is_loopback, wait_healthy, write_json


def post(host, port, path, body, timeout):
    """POST JSON, return (status, decoded body, wall seconds)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    wall = time.monotonic() - start
    try:
        obj = json.loads(data)
    except json.JSONDecodeError:
        obj = {"raw": data[:300].decode("utf-8", "replace")}
    return resp.status, obj, wall


def checked(what, status, obj):
    if status != 200:
        sys.exit(f"{what}: HTTP {status}: {json.dumps(obj)[:400]}")
    return obj


def complete(args, ids):
    status, obj, wall = post(args.host, args.port, "/completion",
                             {"prompt": ids, "n_predict": 1, "temperature": 0, "id_slot": 0, "cache_prompt": True},
                             args.timeout)
    obj = checked(f"/completion of {len(ids)} tokens", status, obj)
    t = obj.get("timings", {})
    return {"prompt_tokens_processed": t.get("prompt_n"), "prompt_ms": t.get("prompt_ms"), "wall_ms": wall * 1000}


def slot_action(args, action, filename=None):
    body = {"filename": filename} if filename else {}
    status, obj, wall = post(args.host, args.port, f"/slots/0?action={action}", body, args.timeout)
    obj = checked(f"slot {action}", status, obj)
    obj["wall_ms"] = wall * 1000
    return obj


def run_logged(cmd):
    """Runs cmd, time-stamping each line of its stderr as it arrives. Returns (lines with
    monotonic times, wall seconds, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    lines = []
    for line in proc.stderr:
        lines.append((time.monotonic(), line.rstrip("\n")))
    out = proc.stdout.read()
    if proc.wait() != 0:
        tail = "\n".join(l for _, l in lines[-15:])
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{tail}")
    return lines, time.monotonic() - start, out


def line_time(lines, needle):
    for t, l in lines:
        if needle in l:
            return t
    return None


def prompt_eval_ms(lines):
    """llama.cpp's perf line: 'prompt eval time = X ms / N tokens'."""
    for _, l in lines:
        m = re.search(r"prompt eval time =\s+([0-9.]+) ms /\s+(\d+) tokens", l)
        if m:
            return float(m.group(1)), int(m.group(2))
    return None, None


def session_tokens(path):
    """The token count in a llama.cpp session file's header (magic 'ggsn', version, count)."""
    with open(path, "rb") as fh:
        magic, version, count = struct.unpack("<III", fh.read(12))
    if magic != 0x6767736E:
        sys.exit(f"{path}: not a llama.cpp session file (magic {magic:#x})")
    return count


def cli_rows(a, contexts):
    rows = []
    os.makedirs(a.save_dir, exist_ok=True)
    for n in contexts:
        prompt_path = os.path.join(a.save_dir, f"prompt-{n}.txt")
        with open(prompt_path, "w") as fh:
            fh.write("the" + " the" * (n - 2))
        cache = os.path.join(a.save_dir, f"session-{n}.bin")
        if os.path.exists(cache):
            os.remove(cache)
        cmd = [a.cli, "-m", a.model, "-f", prompt_path, "-n", "1", "-c", str(n + 64), "-t", str(a.threads),
               "-tb", str(a.threads), "--temp", "0", "-no-cnv", "--no-display-prompt", "--prompt-cache", cache]
        first, first_wall, _ = run_logged(cmd)
        prefill_ms, prefill_n = prompt_eval_ms(first)
        size = os.path.getsize(cache)
        tokens = session_tokens(cache)
        again, again_wall, _ = run_logged(cmd)
        t0, t1 = line_time(again, "attempting to load saved session"), line_time(again, "replayed last token")
        if t0 is None or t1 is None:
            sys.exit(f"{a.cli}: the second run did not load the session and replay its last token:\n" +
                     "\n".join(l for _, l in again[-15:]))
        replay_ms, replay_n = prompt_eval_ms(again)
        os.remove(cache)
        row = {
            "context_tokens": n,
            "saved_tokens": tokens,
            "file_bytes": size,
            "bytes_per_token": size / tokens,
            "save_ms": None,
            "prefill_ms": prefill_ms,
            "prefill_tokens_processed": prefill_n,
            "prefill_run_wall_ms": first_wall * 1000,
            "restore_to_first_token_ms": (t1 - t0) * 1000,
            "after_restore_prompt_eval_ms": replay_ms,
            "after_restore_tokens_processed": replay_n,
            "restore_run_wall_ms": again_wall * 1000,
        }
        row["prefill_vs_restore_to_first_token"] = prefill_ms / row["restore_to_first_token_ms"] if prefill_ms else None
        rows.append(row)
        save_rows(a, rows)  # after every length: a long run stopped early keeps what it measured
        print(f"{n} tokens: {size / 2**20:.1f} MiB ({row['bytes_per_token']:.0f} B/token), prefill {prefill_ms:.0f} ms; "
              f"restore to first token {row['restore_to_first_token_ms']:.0f} ms", file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, help="the llama-server to measure (or --cli)")
    ap.add_argument("--cli", help="llama-completion: measure --prompt-cache files instead of a server's slots")
    ap.add_argument("--model", help="the GGUF for --cli")
    ap.add_argument("--threads", type=int, default=2, help="threads for --cli")
    ap.add_argument("--pid", type=int, help="the server's PID: stop waiting for /health if it exits")
    ap.add_argument("--save-dir", required=True, help="the server's --slot-save-path (to measure the files)")
    ap.add_argument("--contexts", default="1024,4096,8192", help="context lengths in tokens (default 1024,4096,8192)")
    ap.add_argument("--vocab", type=int, default=32001, help="token ids are drawn from [3, vocab)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--label", default="")
    ap.add_argument("--server-command", default="")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()
    if not is_loopback(a.host):
        sys.exit(f"--host {a.host}: not a loopback address; only a server on this machine")
    contexts = [int(x) for x in a.contexts.split(",")]
    rng = random.Random(a.seed)
    ids = [rng.randrange(3, a.vocab) for _ in range(max(contexts))]

    if a.cli:
        rows = cli_rows(a, contexts)
    else:
        if a.port is None:
            sys.exit("--port (a llama-server) or --cli (llama-completion) is needed")
        rows = server_rows(a, contexts, ids)
    print_table(rows)


def server_rows(a, contexts, ids):
    wait_healthy(a.host, a.port, 600, a.pid)
    rows = []
    for n in contexts:
        prompt = ids[:n]
        slot_action(a, "erase")
        prefill = complete(a, prompt)
        name = f"state-{n}.bin"
        saved = slot_action(a, "save", name)
        size = os.path.getsize(os.path.join(a.save_dir, name))
        slot_action(a, "erase")
        restore_start = time.monotonic()
        restored = slot_action(a, "restore", name)
        again = complete(a, prompt)
        restore_to_first_ms = (time.monotonic() - restore_start) * 1000
        os.remove(os.path.join(a.save_dir, name))
        row = {
            "context_tokens": n,
            "saved_tokens": saved.get("n_saved"),
            "file_bytes": size,
            "bytes_per_token": size / n,
            "save_ms": saved.get("timings", {}).get("save_ms"),
            "restore_ms": restored.get("timings", {}).get("restore_ms"),
            "restored_tokens": restored.get("n_restored"),
            "prefill_ms": prefill["prompt_ms"],
            "prefill_tokens_processed": prefill["prompt_tokens_processed"],
            "prefill_request_ms": prefill["wall_ms"],
            "after_restore_tokens_processed": again["prompt_tokens_processed"],
            "after_restore_request_ms": again["wall_ms"],
            "restore_to_first_token_ms": restore_to_first_ms,
        }
        row["prefill_vs_restore_to_first_token"] = row["prefill_request_ms"] / restore_to_first_ms
        rows.append(row)
        save_rows(a, rows)  # after every length: a long run stopped early keeps what it measured
        print(f"{n} tokens: {size / 2**20:.1f} MiB ({size / n:.0f} B/token), save {row['save_ms']:.0f} ms, "
              f"restore {row['restore_ms']:.0f} ms, prefill {row['prefill_ms']:.0f} ms; after the restore "
              f"{row['after_restore_tokens_processed']} token(s) processed, restore to first token "
              f"{restore_to_first_ms:.0f} ms ({row['prefill_vs_restore_to_first_token']:.1f}x faster than the prefill request)",
              file=sys.stderr)
    return rows


def print_table(rows):
    head = f"{'context':>7} {'file MiB':>9} {'B/token':>8} {'save ms':>8} {'restore ms':>10} {'prefill ms':>10} {'restore→1st ms':>14} {'reprocessed':>11}"
    print(head)
    for r in rows:
        ms = lambda k: "-" if r.get(k) is None else f"{r[k]:.0f}"
        print(f"{r['context_tokens']:>7} {r['file_bytes'] / 2**20:>9.1f} {r['bytes_per_token']:>8.0f} {ms('save_ms'):>8} "
              f"{ms('restore_ms'):>10} {ms('prefill_ms'):>10} {ms('restore_to_first_token_ms'):>14} "
              f"{r['after_restore_tokens_processed']:>11}")


def save_rows(a, rows):
    if a.out:
        out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "label": a.label,
               "method": "llama-completion --prompt-cache" if a.cli else "llama-server slot save/restore",
               "server_command": a.server_command, "seed": a.seed, "rows": rows}
        write_json(a.out, out)


if __name__ == "__main__":
    main()
