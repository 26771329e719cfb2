#!/usr/bin/env python3
"""A bounded load on an OpenAI-compatible server on loopback (llama.cpp's llama-server,
hymba-edge serve), standard library only.

  serve_load.py run --port 8080 --pid 1234 --out result.json   # 1, 2, 4, 8 clients
  serve_load.py chart A.json B.json -o chart.png               # two results side by side

For each concurrency level C, C client threads share a fixed number of requests (--requests,
default 16) and the level ends when the last one has finished: no level runs open-ended, and a
request that takes longer than --timeout counts as an error. Every request is a streamed
/v1/completions of --max-tokens tokens at temperature 0, its prompt one of eight fixed prompts
(request i takes prompt i mod 8), so two runs send the same load. Measured per level: time to
first token (from sending the request to the first streamed chunk) p50 and p95, aggregate
tok/s (all completion tokens / the level's wall time), per-stream tok/s (each request's tokens
after the first / the time from its first to its last chunk; median), errors, and the server's
VmHWM and VmRSS from /proc/PID/status after the level (VmHWM is the peak since the server
started, so after level C it is the peak up to C clients).

Only loopback addresses are accepted as the target: this is a load test of a local server.
"""
import argparse
import http.client
import ipaddress
import json
import math
import os
import re
import socket
import statistics
import sys
import threading
import time

PROMPTS = [
    "The history of the printing press begins in the fifteenth century, when",
    "Here is a short recipe for a vegetable soup that takes thirty minutes:",
    "In a small village at the foot of the mountains there lived an old clockmaker who",
    "The three most important ideas in computer networking are",
    "Dear team, thank you all for the work on the release last week. Before the next one,",
    "A beginner's guide to keeping tomatoes healthy in a greenhouse starts with",
    "The train left the station at dawn, and by the time the sun was high",
    "To explain recursion to a child, you could say that",
]


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def proc_status(pid):
    """VmHWM and VmRSS of a process in bytes, or None when it has gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            text = fh.read()
    except OSError:
        return None
    out = {}
    for key in ("VmHWM", "VmRSS"):
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        out[key] = int(m.group(1)) * 1024 if m else None
    return out


def pid_listening_on(port):
    """The process with a listening TCP socket on this port (from /proc/net/tcp{,6} and the
    processes' file descriptors), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    f = line.split()
                    if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A":  # 0A: LISTEN
                        inodes.add(f[9])
        except OSError:
            continue
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def wait_healthy(host, port, seconds, pid):
    """Polls GET /health until it answers 200 (llama-server and hymba-edge serve answer 503 while
    loading); exits with a message after `seconds`, or as soon as the server process `pid` (when
    given) has exited."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if pid and not os.path.exists(f"/proc/{pid}"):
            sys.exit(f"{host}:{port}: the server (PID {pid}) exited before /health answered 200")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status == 200:
                return
            last = f"HTTP {resp.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    sys.exit(f"{host}:{port}: /health not ready after {seconds} s ({last})")


def one_request(host, port, index, args):
    """One streamed completion. Returns a dict: ok, error, ttft, tokens, first/last chunk times."""
    body = {
        "prompt": PROMPTS[index % len(PROMPTS)],
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "stream": True,
        # The usage chunk gives the server's own token count: text chunks need not be one per
        # token (a piece held back while a stop string or a UTF-8 sequence may be forming).
        "stream_options": {"include_usage": True},
    }
    if args.model:
        body["model"] = args.model
    if args.ignore_eos:
        # llama-server's extra field: a random-weight model may otherwise stop at an early EOS.
        body["ignore_eos"] = True
    result = {"index": index, "ok": False, "error": None, "ttft": None, "tokens": 0, "chunks": 0, "usage_tokens": None}
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            result["error"] = f"HTTP {resp.status}: {resp.read(300).decode('utf-8', 'replace')}"
            conn.close()
            return result
        first = last = None
        done = False
        while True:
            if time.monotonic() - start > args.timeout:
                result["error"] = f"timeout after {args.timeout} s"
                break
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            obj = json.loads(data)
            if "error" in obj:
                result["error"] = f"server error: {json.dumps(obj['error'])[:300]}"
                break
            now = time.monotonic()
            if obj.get("choices"):
                result["chunks"] += 1
                if first is None:
                    first = now
                last = now
            usage = obj.get("usage") or {}
            if usage.get("completion_tokens") is not None:
                result["usage_tokens"] = usage["completion_tokens"]
            timings = obj.get("timings") or {}
            if timings.get("predicted_n") is not None and result["usage_tokens"] is None:
                result["usage_tokens"] = timings["predicted_n"]
        conn.close()
        if result["error"] is None and not done:
            result["error"] = "stream ended without [DONE]"
        if result["error"] is None and first is None:
            result["error"] = "no completion chunk"
        if result["error"] is None:
            # The server's own count when it gives one (a chunk may carry several tokens, or none
            # while a multi-byte character is incomplete); else one token per chunk.
            result["tokens"] = result["usage_tokens"] if result["usage_tokens"] is not None else result["chunks"]
            result["ttft"] = first - start
            result["first"], result["last"] = first, last
            result["ok"] = True
    except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    return result


def run_level(host, port, clients, requests, args):
    lock = threading.Lock()
    next_index = [0]
    results = []

    def worker():
        while True:
            with lock:
                if next_index[0] >= requests:
                    return
                i = next_index[0]
                next_index[0] += 1
            r = one_request(host, port, i, args)
            with lock:
                results.append(r)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    ok = [r for r in results if r["ok"]]
    tokens = sum(r["tokens"] for r in ok)
    per_stream = [(r["tokens"] - 1) / (r["last"] - r["first"]) for r in ok if r["tokens"] > 1 and r["last"] > r["first"]]
    ttft = [r["ttft"] for r in ok]
    return {
        "clients": clients,
        "requests": requests,
        "completed": len(ok),
        "errors": len(results) - len(ok),
        "error_samples": sorted({r["error"] for r in results if not r["ok"]})[:5],
        "wall_seconds": wall,
        "completion_tokens": tokens,
        "aggregate_tokens_per_second": tokens / wall if wall > 0 else 0.0,
        "per_stream_tokens_per_second_median": statistics.median(per_stream) if per_stream else None,
        "per_stream_tokens_per_second_min": min(per_stream) if per_stream else None,
        "ttft_p50_seconds": percentile(ttft, 50) if ttft else None,
        "ttft_p95_seconds": percentile(ttft, 95) if ttft else None,
        "tokens_per_request": sorted({r["tokens"] for r in ok}),
    }


def write_json(path, obj):
    """Writes obj as JSON through a temporary file and a rename: never a half-written result."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path}", file=sys.stderr)


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_table(levels):
    head = f"{'clients':>7} {'done':>5} {'err':>4} {'agg tok/s':>9} {'stream tok/s':>12} {'TTFT p50':>9} {'TTFT p95':>9} {'VmHWM MiB':>9}"
    print(head)
    for lv in levels:
        hwm = lv.get("server_vmhwm_bytes")
        print(f"{lv['clients']:>7} {lv['completed']:>5} {lv['errors']:>4} {lv['aggregate_tokens_per_second']:>9.1f} "
              f"{fmt(lv['per_stream_tokens_per_second_median'], '.1f'):>12} {fmt(lv['ttft_p50_seconds'], '.3f'):>9} "
              f"{fmt(lv['ttft_p95_seconds'], '.3f'):>9} {fmt(hwm / 2**20 if hwm else None, '.1f'):>9}")


def cmd_run(args):
    if not is_loopback(args.host):
        sys.exit(f"--host {args.host}: not a loopback address; this load test only targets 127.0.0.0/8, ::1 or localhost")
    levels_asked = [int(x) for x in args.concurrency.split(",")]
    if any(c < 1 for c in levels_asked) or args.requests < 1 or args.max_tokens < 1:
        sys.exit("--concurrency, --requests and --max-tokens must be positive")
    wait_healthy(args.host, args.port, args.health_wait, args.pid)
    pid = args.pid or pid_listening_on(args.port)
    if pid is None:
        print(f"warning: no process found listening on port {args.port}: peak RSS not reported", file=sys.stderr)
    if args.warmup:
        r = one_request(args.host, args.port, 0, args)
        if not r["ok"]:
            sys.exit(f"warm-up request failed: {r['error']}")
    levels = []
    for clients in levels_asked:
        requests = max(args.requests, clients)
        lv = run_level(args.host, args.port, clients, requests, args)
        st = proc_status(pid) if pid else None
        lv["server_vmhwm_bytes"] = st["VmHWM"] if st else None
        lv["server_vmrss_bytes"] = st["VmRSS"] if st else None
        levels.append(lv)
        print(f"{clients} client(s): {lv['completed']}/{requests} done, {lv['errors']} errors, "
              f"{lv['aggregate_tokens_per_second']:.1f} tok/s aggregate", file=sys.stderr)
    one = next((lv for lv in levels if lv["clients"] == 1), None)
    for lv in levels:
        lv["aggregate_vs_one_client"] = (lv["aggregate_tokens_per_second"] / one["aggregate_tokens_per_second"]
                                         if one and one["aggregate_tokens_per_second"] > 0 else None)
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "label": args.label,
        "server": {"host": args.host, "port": args.port, "pid": pid, "command": args.server_command},
        "settings": {"max_tokens": args.max_tokens, "requests_per_level": args.requests, "concurrency": levels_asked,
                     "temperature": 0, "stream": True, "ignore_eos": args.ignore_eos, "prompts": PROMPTS,
                     "timeout_seconds": args.timeout},
        "levels": levels,
        "server_peak_rss_bytes": max((lv["server_vmhwm_bytes"] or 0) for lv in levels) or None,
        "errors": sum(lv["errors"] for lv in levels),
    }
    print_table(levels)
    if args.out:
        write_json(args.out, out)
    return 1 if out["errors"] else 0


def cmd_chart(args):
    """Two result files side by side: aggregate tok/s, per-stream tok/s and TTFT p50 per level."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for path in args.files:
        with open(path) as fh:
            runs.append(json.load(fh))
    clients = sorted({lv["clients"] for r in runs for lv in r["levels"]})
    panels = [("aggregate_tokens_per_second", "aggregate tok/s", 1),
              ("per_stream_tokens_per_second_median", "per-stream tok/s (median)", 1),
              ("ttft_p50_seconds", "time to first token p50 (ms)", 1000)]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4.2))
    w = 0.8 / len(runs)
    colors = ["#888888", "#76b900", "#4a90d9", "#d98c4a"]
    for ax, (key, title, scale) in zip(axes, panels):
        for j, r in enumerate(runs):
            by = {lv["clients"]: lv for lv in r["levels"]}
            xs = [i + (j - (len(runs) - 1) / 2) * w for i in range(len(clients))]
            vals = [(by[c][key] or 0) * scale if c in by else 0 for c in clients]
            bars = ax.bar(xs, vals, w, label=r.get("label") or os.path.basename(args.files[j]), color=colors[j % len(colors)])
            for b, v in zip(bars, vals):
                ax.annotate(f"{v:.0f}" if v >= 100 else f"{v:.1f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(clients)))
        ax.set_xticklabels([str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    # One legend under the panels, where no bar or label can be under it.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(runs), fontsize=8, frameon=False)
    fig.suptitle(args.title or "server load: " + " vs ".join(r.get("label") or "?" for r in runs), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the load against a server")
    r.add_argument("--host", default="127.0.0.1", help="loopback address of the server (default 127.0.0.1)")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid", type=int, help="the server's PID for peak RSS (default: the process listening on --port)")
    r.add_argument("--concurrency", default="1,2,4,8", help="client counts, one level each (default 1,2,4,8)")
    r.add_argument("--requests", type=int, default=16, help="requests per level (at least one per client; default 16)")
    r.add_argument("--max-tokens", type=int, default=64, help="completion tokens per request (default 64)")
    r.add_argument("--timeout", type=float, default=600, help="seconds one request may take before it counts as an error")
    r.add_argument("--health-wait", type=float, default=300, help="seconds to wait for /health to answer 200")
    r.add_argument("--no-ignore-eos", dest="ignore_eos", action="store_false",
                   help="don't send ignore_eos (llama-server's field; sent by default so every request runs to --max-tokens)")
    r.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the one untimed request before the levels")
    r.add_argument("--model", help="the request's model field (default: none)")
    r.add_argument("--label", default="", help="a name for this run in the JSON and charts")
    r.add_argument("--server-command", default="", help="the server's command line, recorded in the JSON")
    r.add_argument("--out", help="write the results as JSON here")
    c = sub.add_parser("chart", help="two (or more) result files side by side as a PNG")
    c.add_argument("files", nargs="+")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--title")
    a = ap.parse_args()
    sys.exit(cmd_run(a) if a.command == "run" else cmd_chart(a))


if __name__ == "__main__":
    main()
