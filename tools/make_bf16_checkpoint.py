#!/usr/bin/env python3
"""Writes a Hugging Face style bf16 Hymba checkpoint with random weights, for measuring the
converter on a full-size model (time and peak RSS) without downloading one.

    tools/make_bf16_checkpoint.py Tests/Fixtures/configs/hymba-1.5b /tmp/hymba-1.5b-bf16 \
        --tokenizer Tests/Fixtures/tiny-hymba --shards 2

The directory gets config.json (copied), model-0000k-of-0000n.safetensors shards with a
model.safetensors.index.json, and the tokenizer files of --tokenizer. Tensor names and shapes
come from tensors.json next to config.json. Weights are normal(0, 0.02) rounded to bf16 (norm
weights 1.0), from a fixed seed: the same command writes the same bytes. Never commit the output.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np


def bf16_bytes(values: np.ndarray) -> bytes:
    """float32 -> bf16 (round to nearest even), little-endian bytes."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def tensor_values(rng, name, shape):
    if name.endswith("norm.weight") or "layernorm" in name:
        return np.ones(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config_dir", help="directory with config.json and tensors.json")
    p.add_argument("output", help="checkpoint directory to write (created)")
    p.add_argument("--tokenizer", required=True, help="directory whose tokenizer files are copied")
    p.add_argument("--shards", type=int, default=2, help="number of safetensors shards (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    a = p.parse_args()

    tensors = json.load(open(os.path.join(a.config_dir, "tensors.json")))
    os.makedirs(a.output, exist_ok=True)
    shutil.copy(os.path.join(a.config_dir, "config.json"), a.output)
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]:
        src = os.path.join(a.tokenizer, f)
        if os.path.exists(src):
            shutil.copy(src, a.output)

    # Split the tensors into shards of about equal size, in tensors.json order.
    sizes = [2 * int(np.prod(t["shape"])) for t in tensors]
    per_shard = sum(sizes) / a.shards
    groups, current, acc = [], [], 0
    for t, s in zip(tensors, sizes):
        if acc >= per_shard * (len(groups) + 1) and len(groups) < a.shards - 1:
            groups.append(current)
            current = []
        current.append(t)
        acc += s
    groups.append(current)

    rng = np.random.default_rng(a.seed)
    weight_map = {}
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for t in group:
            n = 2 * int(np.prod(t["shape"]))
            header[t["name"]] = {"dtype": "BF16", "shape": t["shape"], "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[t["name"]] = fname
        hj = json.dumps(header).encode()
        hj += b" " * (-len(hj) % 8)
        with open(os.path.join(a.output, fname), "wb") as out:
            out.write(struct.pack("<Q", len(hj)))
            out.write(hj)
            for t in group:
                out.write(bf16_bytes(tensor_values(rng, t["name"], t["shape"])))
        print(f"wrote {fname}: {len(group)} tensors, {offset} bytes")
    with open(os.path.join(a.output, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
