#!/usr/bin/env python3
"""The report of compare-llamacpp.sh: reads one run folder (llama-bench and hymba-edge bench JSON,
membw JSON, settings.json) and prints the table; with --results writes latest.{md,json,png} there,
and with --benchmarks-md replaces the block between the results markers of BENCHMARKS.md.

Each backend (settings.json's "backend": native unless --backend forced one) has its own files
and block: native writes latest.* and the block between the plain results markers; avx2, avx512
and portable write latest-BACKEND.* and the block between results:BACKEND markers, which is added
as its own section (before the Methodology heading) the first time.

Rates are medians over every timed repetition of every round. Decode bytes/s is the weight
bytes one decode step reads (llama-bench's model_size; hymba-edge's encoded tensor bytes)
times the decode rate, shown as a share of the measured read bandwidth at the benchmark's
thread count.
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess
import sys

BEGIN = "<!-- results:begin (written by tools/bench/report.py) -->"
END = "<!-- results:end -->"
BACKEND_SECTION_BEFORE = "### Methodology"
SIZE_ORDER = {"125m": 0, "350m": 1, "1.5b": 2}
GGUF = {"q4": "Q4_0", "q8": "Q8_0"}


def load(path):
    with open(path) as fh:
        return json.load(fh)


def cpu_info():
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    vector = [f for f in ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_tile"] if f in flags]
    return {
        "model": info.get("Model name", "unknown"),
        "cpus": info.get("CPU(s)", "?"),
        "threads_per_core": info.get("Thread(s) per core", "?"),
        "l2": info.get("L2 cache", "?"),
        "l3": info.get("L3 cache", "?"),
        "hypervisor": info.get("Hypervisor vendor", ""),
        "vector_flags": vector,
    }


def git_revision(root):
    try:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def new_row(size, kind):
    empty = lambda: {"pp": [], "tg": [], "raw": [], "rounds": {}}
    return {"size": size, "type": kind, "llama": empty(), "hymba": empty()}


def round_ratios(row, test):
    """H/L per round, each from the two engines' runs of that round (minutes apart at most):
    the spread shows how much the machine's slow phases moved the pooled ratio."""
    both = sorted(set(row["llama"]["rounds"]) & set(row["hymba"]["rounds"]))
    return [statistics.median(row["hymba"]["rounds"][r][test]) / statistics.median(row["llama"]["rounds"][r][test])
            for r in both if row["hymba"]["rounds"][r][test] and row["llama"]["rounds"][r][test]]


def collect(run):
    """One row per (size, type): both engines' pooled samples and figures."""
    settings = load(os.path.join(run, "settings.json"))
    rows = {}
    for path in sorted(glob.glob(os.path.join(run, "llama-*-r*.json"))):
        m = re.match(r"llama-(.+)-(q4|q8)-r(\d+)\.json$", os.path.basename(path))
        size, kind, rnd = m.group(1), m.group(2), int(m.group(3))
        row = rows.setdefault((size, kind), new_row(size, kind))
        this_round = row["llama"]["rounds"].setdefault(rnd, {"pp": [], "tg": []})
        for test in load(path):
            if test.get("n_gen", 0) > 0:
                row["llama"]["tg"] += test["samples_ts"]
                this_round["tg"] += test["samples_ts"]
            elif test.get("n_prompt", 0) > 0:
                row["llama"]["pp"] += test["samples_ts"]
                this_round["pp"] += test["samples_ts"]
            row["llama"]["raw"].append(test)
    for path in sorted(glob.glob(os.path.join(run, "hymba-*-r*.json"))):
        m = re.match(r"hymba-(.+)-(q4|q8)-r(\d+)\.json$", os.path.basename(path))
        size, kind, rnd = m.group(1), m.group(2), int(m.group(3))
        row = rows.setdefault((size, kind), new_row(size, kind))
        obj = load(path)
        row["hymba"]["pp"] += obj["prefill_tokens_per_second_runs"]
        row["hymba"]["tg"] += obj["decode_tokens_per_second_runs"]
        row["hymba"]["rounds"][rnd] = {"pp": obj["prefill_tokens_per_second_runs"], "tg": obj["decode_tokens_per_second_runs"]}
        row["hymba"]["raw"].append(obj)
    loads, idle = {}, {}
    load_path = os.path.join(run, "load.jsonl")
    if os.path.exists(load_path):
        with open(load_path) as fh:
            for line in fh:
                if line.strip():
                    e = json.loads(line)
                    loads.setdefault((e["size"], e["type"]), []).extend([e["before"], e["after"]])
                    if "idle_before" in e:
                        idle.setdefault((e["size"], e["type"]), []).append(e["idle_before"])
    bandwidth = {}
    for path in glob.glob(os.path.join(run, "membw-*.json")):
        b = load(path)
        bandwidth[b["threads"]] = b
    out = []
    for (size, kind), row in sorted(rows.items(), key=lambda kv: (SIZE_ORDER.get(kv[0][0], 9), kv[0][1])):
        if not row["llama"]["raw"] or not row["hymba"]["raw"]:
            sys.exit(f"{run}: {size} {kind} lacks a llama-bench or a hymba-edge result")
        l0, h0 = row["llama"]["raw"][0], row["hymba"]["raw"][0]
        r = {
            "size": size,
            "type": kind,
            "llama_type": GGUF[kind],
            "llama_params": l0["model_n_params"],
            "llama_weight_bytes": l0["model_size"],
            "llama_bits_per_weight": l0["model_size"] * 8 / l0["model_n_params"],
            "llama_threads": l0["n_threads"],
            "hymba_params": h0["params"],
            "hymba_weight_bytes": h0["weight_bytes"],
            "hymba_bits_per_weight": h0["bits_per_weight"],
            "hymba_threads": h0["threads"],
            "hymba_threads_requested": h0["threads_requested"],
            "hymba_peak_rss_bytes": max(o["peak_rss_bytes"] for o in row["hymba"]["raw"]),
            "hymba_kv_bytes": h0["kv_bytes"],
            # Named by builds with runtime dispatch (bench --json "kernels"); absent before.
            "hymba_backend": h0.get("kernels") or h0.get("backend"),
            "llama_prefill_tokens_per_second": statistics.median(row["llama"]["pp"]),
            "hymba_prefill_tokens_per_second": statistics.median(row["hymba"]["pp"]),
            "llama_decode_tokens_per_second": statistics.median(row["llama"]["tg"]),
            "hymba_decode_tokens_per_second": statistics.median(row["hymba"]["tg"]),
            "llama_prefill_samples": row["llama"]["pp"],
            "hymba_prefill_samples": row["hymba"]["pp"],
            "llama_decode_samples": row["llama"]["tg"],
            "hymba_decode_samples": row["hymba"]["tg"],
        }
        r["prefill_ratio"] = r["hymba_prefill_tokens_per_second"] / r["llama_prefill_tokens_per_second"]
        r["decode_ratio"] = r["hymba_decode_tokens_per_second"] / r["llama_decode_tokens_per_second"]
        r["prefill_ratio_per_round"] = round_ratios(row, "pp")
        r["decode_ratio_per_round"] = round_ratios(row, "tg")
        r["llama_decode_bytes_per_second"] = r["llama_weight_bytes"] * r["llama_decode_tokens_per_second"]
        r["hymba_decode_bytes_per_second"] = r["hymba_weight_bytes"] * r["hymba_decode_tokens_per_second"]
        if (size, kind) in loads:
            r["load_average_min"] = min(loads[(size, kind)])
            r["load_average_max"] = max(loads[(size, kind)])
            # More runnable threads than cores: both engines were descheduled, and not equally.
            r["loaded"] = r["load_average_max"] > (os.cpu_count() or 1)
        if (size, kind) in idle:
            # Share of the CPUs idle in the 5 s before each run (other jobs only: ours had ended).
            r["idle_before_min_percent"] = min(idle[(size, kind)])
        bw = bandwidth.get(settings["threads"])
        if bw:
            peak = bw["best_gb_per_s"] * 1e9
            r["llama_bandwidth_share"] = r["llama_decode_bytes_per_second"] / peak
            r["hymba_bandwidth_share"] = r["hymba_decode_bytes_per_second"] / peak
        out.append(r)
    llama_build = ""
    for row in rows.values():
        t = row["llama"]["raw"][0]
        llama_build = f"{t.get('build_commit', '?')} (build {t.get('build_number', '?')})"
        break
    return settings, out, bandwidth, llama_build


def fmt_rate(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def ratio(r, test):
    """The pooled ratio, then the range of the per-round ratios when there are several rounds."""
    per_round = r.get(f"{test}_ratio_per_round", [])
    spread = f" ({min(per_round):.2f}–{max(per_round):.2f})" if len(per_round) > 1 else ""
    return f"{r[f'{test}_ratio']:.2f}{spread}"


def table_rows(rows):
    head = ["size", "type", "params L / H (M)", "bits/w L / H", "prefill L", "prefill H", "H/L", "decode L", "decode H", "H/L",
            "decode GB/s L (% bw)", "decode GB/s H (% bw)", "H threads", "load avg", "idle before"]
    body = []
    for r in rows:
        def bw(k):
            share = r.get(f"{k}_bandwidth_share")
            gb = r[f"{k}_decode_bytes_per_second"] / 1e9
            return f"{gb:.2f} ({share * 100:.0f}%)" if share is not None else f"{gb:.2f}"
        threads = str(r["hymba_threads"]) if r["hymba_threads"] == r["hymba_threads_requested"] else f"{r['hymba_threads']} of {r['hymba_threads_requested']}"
        body.append([
            r["size"], f"{r['type']} / {r['llama_type']}",
            f"{r['llama_params'] / 1e6:.0f} / {r['hymba_params'] / 1e6:.0f}",
            f"{r['llama_bits_per_weight']:.2f} / {r['hymba_bits_per_weight']:.2f}",
            fmt_rate(r["llama_prefill_tokens_per_second"]), fmt_rate(r["hymba_prefill_tokens_per_second"]), ratio(r, "prefill"),
            fmt_rate(r["llama_decode_tokens_per_second"]), fmt_rate(r["hymba_decode_tokens_per_second"]), ratio(r, "decode"),
            bw("llama"), bw("hymba"), threads,
            (f"{r['load_average_min']:.1f}–{r['load_average_max']:.1f}" + (" ⚠" if r["loaded"] else "")) if "load_average_min" in r else "?",
            f"≥ {r['idle_before_min_percent']}%" if "idle_before_min_percent" in r else "?",
        ])
    return head, body


def markdown_table(rows):
    head, body = table_rows(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(lines)


def text_table(rows):
    head, body = table_rows(rows)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


def chart(rows, path, title):
    """Three panels: prefill tok/s, decode tok/s (both engines, linear scale, values on the
    bars) and the hymba/llama ratios against the issue's targets (decode 1.0, prefill 0.8)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['size']}\n{r['type']}" + ("\n⚠ load" if r.get("loaded") else "") for r in rows]
    x = list(range(len(rows)))
    w = 0.38
    fig, axes = plt.subplots(1, 3, figsize=(max(10, 3.2 * len(rows) + 4), 4.8))
    for ax, key in [(axes[0], "prefill"), (axes[1], "decode")]:
        lv = [r[f"llama_{key}_tokens_per_second"] for r in rows]
        hv = [r[f"hymba_{key}_tokens_per_second"] for r in rows]
        for offset, values, name, color in [(-w / 2, lv, "llama.cpp (Llama)", "#888888"), (w / 2, hv, "hymba-edge (Hymba)", "#76b900")]:
            bars = ax.bar([i + offset for i in x], values, w, label=name, color=color)
            for b, v in zip(bars, values):
                ax.annotate(fmt_rate(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_ylabel("tokens per second")
        ax.set_title(f"{key} tok/s")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    ax = axes[2]
    for offset, key, color in [(-w / 2, "prefill", "#4a90d9"), (w / 2, "decode", "#d98c4a")]:
        values = [r[f"{key}_ratio"] for r in rows]
        bars = ax.bar([i + offset for i in x], values, w, label=key, color=color)
        for b, v in zip(bars, values):
            ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="#d98c4a", linestyle="--", linewidth=1, label="decode target 1.0")
    ax.axhline(0.8, color="#4a90d9", linestyle=":", linewidth=1, label="prefill target 0.8")
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_title("hymba-edge / llama.cpp")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markers(backend):
    """The results block markers of BENCHMARKS.md for one backend."""
    if backend == "native":
        return BEGIN, END
    return f"<!-- results:{backend}:begin (written by tools/bench/report.py) -->", f"<!-- results:{backend}:end -->"


def results_stem(backend):
    return "latest" if backend == "native" else f"latest-{backend}"


def backend_line(settings, reported, llama_build):
    """Which kernels each engine ran: the backend asked for (and, when the binary names it in
    bench --json, the one it used) and the llama.cpp variant with its CMake flags."""
    backend = settings.get("backend", "native")
    asked = "the binary's own choice (no HYMBA_BACKEND)" if backend == "native" else f"`HYMBA_BACKEND={backend}`"
    used = f"; the binary reports {', '.join(sorted(reported))}" if reported else \
        "; this binary does not name its backend in bench --json"
    variant = settings.get("llama_variant", "native")
    flags = settings.get("llama_flags") or "-DGGML_NATIVE=ON"
    peer = ""
    if backend == "portable":
        peer = (" The portable kernels are what CPUs without hymba-edge's SIMD backends run (AVX2-only x86 before "
                "its AVX2 backend, ARM until a NEON one); their users' llama.cpp has SIMD kernels for their CPU, so the "
                "peer here is llama.cpp's AVX2 build.")
    return (f"Backend: hymba-edge kernels {asked}{used}; llama.cpp {llama_build}, {variant} variant "
            f"(`{flags}`).{peer}")


def write_block(path, backend, body):
    """Replaces the backend's results block in BENCHMARKS.md; a forced backend's block is created
    the first time, as its own section before the Methodology heading."""
    begin, end = markers(backend)
    text = open(path).read()
    if begin not in text or end not in text:
        if backend == "native":
            sys.exit(f"{path}: no results markers ({begin} … {end})")
        if BACKEND_SECTION_BEFORE not in text:
            sys.exit(f"{path}: neither {backend} results markers nor a '{BACKEND_SECTION_BEFORE}' heading to put them before")
        section = f"### Latest results: the {backend} backend\n\n{begin}\n{end}\n\n"
        text = text.replace(BACKEND_SECTION_BEFORE, section + BACKEND_SECTION_BEFORE, 1)
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(head + begin + "\n" + body + "\n" + end + tail)
    os.replace(tmp, path)


def run_time(run):
    """When the run started: its folder's name (compare-llamacpp.sh names it so), else now."""
    try:
        return datetime.datetime.strptime(os.path.basename(os.path.normpath(run)), "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return datetime.datetime.now(datetime.timezone.utc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder of compare-llamacpp.sh")
    ap.add_argument("--results", help="write latest.md, latest.json and latest.png here")
    ap.add_argument("--benchmarks-md", help="replace the results block of this BENCHMARKS.md")
    a = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    settings, rows, bandwidth, llama_build = collect(a.run)
    if not rows:
        sys.exit(f"{a.run}: no results")
    backend = settings.get("backend", "native")
    stem = results_stem(backend)
    reported_backends = {r["hymba_backend"] for r in rows if r.get("hymba_backend")}
    cpu = cpu_info()
    date = run_time(a.run).strftime("%Y-%m-%d %H:%M UTC")
    threads = settings["threads"]
    bw_line = ", ".join(f"{t} thread{'s' if t > 1 else ''}: {b['best_gb_per_s']:.1f} GB/s best, {b['median_gb_per_s']:.1f} median"
                        for t, b in sorted(bandwidth.items()))
    # Recorded by compare-llamacpp.sh when it built the binary; older runs did not record it.
    revision = settings.get("hymba_edge_revision") or git_revision(root)

    print(text_table(rows))
    print(f"\nmemory read bandwidth: {bw_line}")
    print(backend_line(settings, reported_backends, llama_build))
    print(f"L = llama.cpp {llama_build}, H = hymba-edge {revision}; {settings['prompt_tokens']}-token prefill, "
          f"{settings['gen_tokens']} decoded tokens, medians of {settings['repetitions']} repetitions × {settings['rounds']} rounds")

    summary = {
        "date": date,
        "cpu": cpu,
        "hymba_edge_revision": revision,
        "backend": backend,
        "hymba_backends_reported": sorted(reported_backends),
        "llama_cpp": {"source": settings.get("llama_source"), "build": llama_build,
                      "variant": settings.get("llama_variant", "native"), "flags": settings.get("llama_flags", "-DGGML_NATIVE=ON")},
        "settings": settings,
        "memory_bandwidth": {str(t): b for t, b in sorted(bandwidth.items())},
        "rows": rows,
    }
    md = "\n".join([
        f"Measured {date} on {cpu['model']} ({cpu['cpus']} CPUs{', ' + cpu['hypervisor'] + ' guest' if cpu['hypervisor'] else ''}; "
        f"L2 {cpu['l2']}, L3 {cpu['l3']}; {' '.join(cpu['vector_flags'])}), shared with other jobs.",
        "",
        f"Command: `{settings['command']}`",
        "",
        backend_line(settings, reported_backends, llama_build),
        "",
        f"L = llama.cpp {llama_build} from {settings.get('llama_source')} (`llama-bench -t {threads} -p {settings['prompt_tokens']} "
        f"-n {settings['gen_tokens']} -r {settings['repetitions']}`, random-weight Llama, `llama-quantize --pure`); "
        f"H = hymba-edge {revision} (`hymba-edge bench --threads {threads}`, `hymba-convert synthesize`). "
        f"tok/s are medians over {settings['repetitions']} repetitions × {settings['rounds']} round(s); H/L is the ratio of those medians, and in brackets the range of the ratios of the single rounds (each round runs both engines within minutes).",
        "",
        markdown_table(rows),
        "",
        f"Memory read bandwidth (tools/bench/membw.c): {bw_line}. Decode GB/s = weight bytes × decode tok/s; "
        f"% bw = share of the {threads}-thread best. Load avg = the 1-minute load average around the runs "
        f"of that row (the machine has {cpu['cpus']} CPUs; above that, threads wait for a core); idle before = the "
        f"least idle share of the CPUs in the 5 s before any run of that row (other jobs' use; ours had ended).",
    ])
    loaded = [f"{r['size']} {r['type']}" for r in rows if r.get("loaded")]
    if loaded:
        md += (f"\n\n⚠ {', '.join(loaded)}: the load average rose above the {cpu['cpus']} CPUs during these runs, so "
               f"threads waited for a core; such ratios say more about the load than about the engines (see "
               f"Alternation and noise in BENCHMARKS.md). Re-run them on a quieter machine.")
    if a.results:
        os.makedirs(a.results, exist_ok=True)
        with open(os.path.join(a.results, f"{stem}.json"), "w") as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
        title = "hymba-edge vs llama.cpp" + ("" if backend == "native" else f": the {backend} backend")
        with open(os.path.join(a.results, f"{stem}.md"), "w") as fh:
            fh.write(f"# {title}\n\n" + md + f"\n\n![chart]({stem}.png)\n")
        chart(rows, os.path.join(a.results, f"{stem}.png"),
              f"hymba-edge {revision} ({backend}) vs llama.cpp ({settings.get('llama_variant', 'native')}), "
              f"{threads} threads, {cpu['model']}, {date}")
        print(f"\nwrote {a.results}/{stem}.md, {stem}.json, {stem}.png")
    if a.benchmarks_md:
        if not os.path.exists(a.benchmarks_md):
            print(f"{a.benchmarks_md}: missing, not updated", file=sys.stderr)
        else:
            chart_link = f"\n\n![hymba-edge vs llama.cpp](tools/bench/results/{stem}.png)" if a.results else ""
            write_block(a.benchmarks_md, backend, md + chart_link)
            print(f"updated {a.benchmarks_md}")


if __name__ == "__main__":
    main()
