#!/usr/bin/env python3
"""Write a Hugging Face Llama checkpoint with random weights, for llama.cpp's convert_hf_to_gguf.py.

The checkpoint is config.json, model.safetensors (f16, streamed to disk one tensor at a time so
a 1.5B model never sits in memory whole) and the tokenizer files of a Llama-compatible tokenizer
directory (the repository's Tests/Fixtures/tiny-code-hymba: Llama's 32000 pieces + [PAD] = 32001,
the vocabulary Hymba uses). Values are N(0, 0.02), norms are 1: the speed of a quantized model
does not depend on the values.

    make_llama_hf.py --hidden 512 --layers 24 --heads 8 --kv-heads 2 --ffn 2560 \
        --tokenizer Tests/Fixtures/tiny-code-hymba --out cache/hf/llama-125m
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model"]


def tensor_shapes(a):
    """(name, shape) of every tensor of a tied-embedding LlamaForCausalLM, in checkpoint order."""
    d, f, v = a.hidden, a.ffn, a.vocab
    dk = d // a.heads
    out = [("model.embed_tokens.weight", (v, d))]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (d,)),
            (p + "self_attn.q_proj.weight", (a.heads * dk, d)),
            (p + "self_attn.k_proj.weight", (a.kv_heads * dk, d)),
            (p + "self_attn.v_proj.weight", (a.kv_heads * dk, d)),
            (p + "self_attn.o_proj.weight", (d, a.heads * dk)),
            (p + "post_attention_layernorm.weight", (d,)),
            (p + "mlp.gate_proj.weight", (f, d)),
            (p + "mlp.up_proj.weight", (f, d)),
            (p + "mlp.down_proj.weight", (d, f)),
        ]
    out.append(("model.norm.weight", (d,)))
    return out


def write_safetensors(path, shapes, seed):
    """Streams an f16 safetensors file: the header first (offsets follow from the shapes), then
    each tensor generated and written in turn."""
    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    rng = np.random.default_rng(seed)
    with open(path + ".tmp", "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for name, shape in shapes:
            if len(shape) == 1:
                values = np.ones(shape, dtype=np.float16)
            else:
                values = (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype(np.float16)
            fh.write(values.tobytes())
    os.replace(path + ".tmp", path)
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--ffn", type=int, required=True)
    ap.add_argument("--vocab", type=int, default=32001)
    ap.add_argument("--tokenizer", required=True, help="directory with a Llama-compatible tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        sys.exit(f"hidden {a.hidden} must divide by heads {a.heads}, and heads by kv heads {a.kv_heads}")
    os.makedirs(a.out, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": a.hidden,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "head_dim": a.hidden // a.heads,
        "intermediate_size": a.ffn,
        "vocab_size": a.vocab,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 32000,
        "torch_dtype": "float16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    copied = 0
    for f in TOKENIZER_FILES:
        src = os.path.join(a.tokenizer, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out, f))
            copied += 1
    if not os.path.exists(os.path.join(a.out, "tokenizer.json")):
        sys.exit(f"{a.tokenizer}: no tokenizer.json")
    shapes = tensor_shapes(a)
    nbytes = write_safetensors(os.path.join(a.out, "model.safetensors"), shapes, a.seed)
    params = sum(int(np.prod(s)) for _, s in shapes)
    print(f"{a.out}: {params} parameters ({params / 1e6:.1f} M), {nbytes / 2**20:.1f} MiB f16, {copied} tokenizer files")


if __name__ == "__main__":
    main()
