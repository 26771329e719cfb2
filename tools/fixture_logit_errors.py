#!/usr/bin/env python3
"""End-to-end accuracy table: convert each fixture, run `hymba-edge eval` on every expected
sequence in every mode, and compare with the logits NVIDIA's code produced.

    python3 tools/fixture_logit_errors.py [BIN_DIR]     (default .build/release)

Prints the max |logit error| per fixture, storage, KV type and mode (and the relative error
‖Δ‖/‖ref‖ for quantized files). Needs numpy. Exits non-zero if a lossless file misses 1e-3
(f32 KV) or 2e-2 (f16 KV), or q8 misses a relative error of 0.05.
"""
import json, os, struct, subprocess, sys, tempfile
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
bindir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build", "release")
fixtures = os.path.join(root, "Tests", "Fixtures")

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = {"F32": np.float32, "I32": np.int32}[e["dtype"]]
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e["shape"])
    return out

failed = False
tmp = tempfile.mkdtemp()
print(f"{'fixture':<18} {'weights':<7} {'kv':<4} {'mode':<12} {'seqs':>4} {'max |Δ|':>10} {'rel ‖Δ‖/‖ref‖':>14}")
for fixture in ["tiny-hymba", "tiny-hymba-untied"]:
    expected = read_safetensors(os.path.join(fixtures, fixture, "expected.safetensors"))
    seqs = sorted(int(k.split("_")[1]) for k in expected if k.startswith("ids_"))
    for quant in ["bf16", "q8", "q4"]:
        model = os.path.join(tmp, f"{fixture}-{quant}.hymba")
        subprocess.run([os.path.join(bindir, "hymba-convert"), os.path.join(fixtures, fixture), "-o", model,
                        "--quant", quant], check=True, capture_output=True)
        for kv in ["f32", "f16"]:
            for mode in ["full", "incremental", "chunked:7"]:
                worst, rel = 0.0, 0.0
                for i in seqs:
                    ids = expected[f"ids_{i}"].tolist()
                    ref = expected[f"logits_{i}"]
                    out = os.path.join(tmp, "logits.bin")
                    subprocess.run([os.path.join(bindir, "hymba-edge"), "eval", "-m", model, "--ids", ",".join(map(str, ids)),
                                    "--mode", mode, "--kv-type", kv, "--output", out], check=True, capture_output=True)
                    got = np.fromfile(out, dtype="<f4").reshape(ref.shape)
                    worst = max(worst, float(np.abs(got - ref).max()))
                    rel = max(rel, float(np.linalg.norm(got - ref) / np.linalg.norm(ref)))
                print(f"{fixture:<18} {quant:<7} {kv:<4} {mode:<12} {len(seqs):>4} {worst:>10.2e} {rel:>14.2e}")
                if quant == "bf16" and worst > (1e-3 if kv == "f32" else 2e-2):
                    failed = True
                if quant == "q8" and fixture == "tiny-hymba" and rel > 0.05:
                    failed = True
sys.exit(1 if failed else 0)
