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
"""
import argparse
import http.client
import json
import os
import random
import sys
import time

from serve_load import is_loopback, wait_healthy


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
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
        print(f"{n} tokens: {size / 2**20:.1f} MiB ({size / n:.0f} B/token), save {row['save_ms']:.0f} ms, "
              f"restore {row['restore_ms']:.0f} ms, prefill {row['prefill_ms']:.0f} ms; after the restore "
              f"{row['after_restore_tokens_processed']} token(s) processed, restore to first token "
              f"{restore_to_first_ms:.0f} ms ({row['prefill_vs_restore_to_first_token']:.1f}x faster than the prefill request)",
              file=sys.stderr)

    head = f"{'context':>7} {'file MiB':>9} {'B/token':>8} {'save ms':>8} {'restore ms':>10} {'prefill ms':>10} {'restore→1st ms':>14} {'reprocessed':>11}"
    print(head)
    for r in rows:
        print(f"{r['context_tokens']:>7} {r['file_bytes'] / 2**20:>9.1f} {r['bytes_per_token']:>8.0f} {r['save_ms']:>8.0f} "
              f"{r['restore_ms']:>10.0f} {r['prefill_ms']:>10.0f} {r['restore_to_first_token_ms']:>14.0f} "
              f"{r['after_restore_tokens_processed']:>11}")
    if a.out:
        out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "label": a.label,
               "server_command": a.server_command, "seed": a.seed, "rows": rows}
        tmp = a.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, a.out)
        print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
