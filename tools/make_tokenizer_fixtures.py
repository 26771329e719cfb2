#!/usr/bin/env python3
"""Reference cases for the Swift tokenizer, computed with Hugging Face `tokenizers` and jinja2.

Writes Tests/Fixtures/tokenizer-extra-cases.json (Hymba's tokenizer) and
Tests/Fixtures/tokenizer-edge/ (a tiny synthetic BPE that reaches HF's unk / byte-fallback
corner cases, which the real vocabulary never does). Python is only used here, never at run time.

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers jinja2
    /tmp/tokvenv/bin/python tools/make_tokenizer_fixtures.py
"""
import json
import os
import random

import tokenizers
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
MODEL_DIR = os.path.join(FIX, "tiny-hymba")
HELDOUT = os.path.join(FIX, "tiny-code-hymba", "heldout.txt")

PROSE = [
    "The tokenizer splits text into pieces that the model has seen during training.",
    "When a character is missing from the vocabulary, its UTF-8 bytes are used instead, one token per byte.",
    "Small models run comfortably on a laptop; larger ones need more memory, but the same code path.",
    "She said, \"It's fine\" -- and then, after a pause: 'really, it is.'",
    "In 1969, Apollo 11 landed on the Moon; 384,400 km away, 600 million people watched.",
    "Prices rose 3.5% in Q2 (vs. 2.1% in Q1), according to the report published on 2024-07-15.",
    "Mr. O'Neil's co-worker re-entered the room at 9:45 a.m. and asked, \"Where's the e-mail?\"",
    "Über café naïveté: coöperate, résumé, jalapeño, smörgåsbord, Øresund, Łódź, İstanbul.",
    "Don't stop — keep going… the “quotes” and ‘apostrophes’ are typographic here.",
    "A paragraph\n\nwith blank lines,\r\nWindows line endings,\tand tabs.",
    "   leading and trailing whitespace   ",
    "Line with trailing newline\n",
]

SPECIAL_MIX = [
    "<s>",
    "</s>",
    "<s></s>",
    "x<s>y",
    "<s><s>",
    "<<s>>",
    "</s/>",
    "<s",
    "[PAD][PAD]",
    "[PAD ]",
    "<unk><unk>x",
    " <s> ",
    "a</s>\n</s>b",
]

UNICODE = [
    "ί ί ά ά",  # canonically equivalent but distinct vocabulary pieces (tonos vs oxia)
    "e\u0301 é",  # combining sequence vs precomposed
    "Å Å",  # Angstrom sign vs A with ring
    "\ufeffBOM at start",
    "\u2581\u2581\u2581",
    "\u2581",
    "   ",
    "                                                  fifty spaces",
    "a" * 300,
    "ab" * 200,
    "\U0001F469\u200D\U0001F4BB \U0001F3F3\uFE0F\u200D\U0001F308",
    "\U0010FFFF\uE000\uFFFD",
    "x\u0000y\u007f\u0085z",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "ไทย ภาษา",
    "Tiếng Việt có dấu",
    "混合text与中文",
]


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little", signed=True):
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def chat_cases(template):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    compiled = env.from_string(template)
    conversations = [
        ([{"role": "user", "content": "Hi"}], True),
        ([{"role": "user", "content": "Hi"}], False),
        ([], True),
        ([], False),
        ([{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi\n"},
          {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}], True),
        ([{"role": "system", "content": "First."}, {"role": "system", "content": "Second."},
          {"role": "user", "content": "Q"}], True),
        ([{"role": "user", "content": "Q"}, {"role": "system", "content": "late system"}], False),
        ([{"role": "user", "content": "\u3000\u00a0 wide spaces\u2028\x1c"},
          {"role": "assistant", "content": "\u200bzero width is not space\u200b"}], True),
        ([{"role": "user", "content": "use the tool"}, {"role": "tool", "content": " {\"ok\": true} "}], True),
        ([{"role": "user", "content": "multi\nline\n\n  message  "}], True),
        ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], True),
    ]
    out = []
    for messages, add_gen in conversations:
        rendered = compiled.render(messages=messages, tools=None, documents=None,
                                   add_generation_prompt=add_gen)
        out.append({"messages": messages, "add_generation_prompt": add_gen, "rendered": rendered})
    return out


def decode_cases(tok, rng):
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    specials = [0, 1, 2, 32000]
    cases = []
    # Hand-picked: invalid and split byte runs, specials between bytes, leading-space strip.
    b = lambda n: 3 + n
    hand = [
        [b(0x41), b(0xFF)],
        [b(0xE2), b(0x96)],
        [b(0xF0), b(0x9F), b(0x98), b(0x80), b(0xF0)],
        [b(0xF0), b(0x9F), b(0x98), b(0x80), 15043],
        [b(0xE2), 2, b(0x96), b(0x81)],
        [b(0x20), 15043],
        [29871, 29871, 15043],
        [1, 259, 15043],
        [32000, 29871, 15043],
        [1, 15043, 2, 32000, 0, 99999],
        [29871],
        [259],
        [b(0x20)],
        [b(0x20), b(0x20), 15043],
        [2, 29871, b(0x80), 13],
        [b(0xED), b(0xA0), b(0x80)],  # UTF-8 encoded surrogate: invalid
        [b(0xC0), b(0x80)],  # overlong NUL: invalid
        [b(0xF4), b(0x90), b(0x80), b(0x80)],  # above U+10FFFF: invalid
        [],
    ]
    for ids in hand:
        for skip in (True, False):
            cases.append({"ids": ids, "skip_special": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    for _ in range(80):
        n = rng.randint(1, 24)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.45:
                ids.append(rng.randint(3, 258))
            elif r < 0.55:
                ids.append(rng.choice(specials))
            elif r < 0.6:
                ids.append(rng.choice([29871, 259, 13, 30143]))
            elif r < 0.62:
                ids.append(vocab_size + rng.randint(0, 5))
            else:
                ids.append(rng.randint(259, vocab_size - 2))
        skip = rng.random() < 0.5
        cases.append({"ids": ids, "skip_special": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    return cases


def hymba_cases():
    tok = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
    with open(os.path.join(MODEL_DIR, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(HELDOUT, encoding="utf-8") as f:
        heldout = f.read()

    texts = PROSE + SPECIAL_MIX + UNICODE
    lines = heldout.split("\n")
    texts += [line for line in lines[::40] if line.strip()]
    rng = random.Random(1234)
    for _ in range(30):
        start = rng.randrange(0, len(heldout) - 3000)
        texts.append(heldout[start:start + rng.randint(200, 3000)])
    chats = chat_cases(config["chat_template"])
    texts += [c["rendered"] for c in chats]
    for c in chats:
        c["ids"] = tok.encode(c["rendered"]).ids

    whole = tok.encode(heldout).ids
    doc = {
        "generator": f"tools/make_tokenizer_fixtures.py with tokenizers {tokenizers.__version__}",
        "encode": [{"text": t, "ids": tok.encode(t).ids} for t in texts],
        "encode_without_bos": [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids}
                               for t in ["", "Hello world", "<s>x", " "]],
        "whole_file": {"path": "tiny-code-hymba/heldout.txt", "count": len(whole),
                       "fnv1a64": f"{fnv1a64(whole):016x}", "first": whole[:64], "last": whole[-64:]},
        "decode": decode_cases(tok, rng),
        "chat": chats,
    }
    with open(os.path.join(FIX, "tokenizer-extra-cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


def edge_tokenizer(fuse_unk):
    """A tiny BPE where some characters and some bytes are missing, to reach HF's unk paths."""
    pieces = ["<unk>", "<s>", "</s>", "<0xC3>", "<0xA9>", "<0x0A>", "\u2581", "a", "b", "c", "d",
              "ab", "\u2581a", "\u2581ab", "abc", "cd", "\u2581\u2581", "bc", "\u2581b"]
    merges = ["a b", "\u2581 a", "\u2581a b", "ab c", "c d", "\u2581 \u2581", "b c", "\u2581 b"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, c in enumerate(["<unk>", "<s>", "</s>"])
        ] + [{"id": len(pieces), "content": "<tool>", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": False}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": fuse_unk, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {p: i for i, p in enumerate(pieces)}, "merges": merges},
    }


EDGE_TEXTS = ["abcd", "ab ab", "xa", "xxa", "xéa", "xxéa", "éx", "xüa", "üüü", "a\nb", "a\rb",
              "x\ny", "abc<tool>x", "a  b", "bcd", "", "x", "é", "<s>x</s>", "dcba x é"]


def edge_cases():
    out_dir = os.path.join(FIX, "tokenizer-edge")
    os.makedirs(out_dir, exist_ok=True)
    spec = edge_tokenizer(True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)  # one line: tests edit it with plain text replacement
        f.write("\n")
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "pad_token": None, "tokenizer_class": "LlamaTokenizer",
              "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.write("\n")
    fused = Tokenizer.from_str(json.dumps(spec))
    unfused = Tokenizer.from_str(json.dumps(edge_tokenizer(False)))
    doc = {
        "generator": f"tools/make_tokenizer_fixtures.py with tokenizers {tokenizers.__version__}",
        "fuse_unk": [{"text": t, "ids": fused.encode(t).ids} for t in EDGE_TEXTS],
        "no_fuse_unk": [{"text": t, "ids": unfused.encode(t).ids} for t in EDGE_TEXTS],
        "decode": [{"ids": ids, "text": fused.decode(ids, skip_special_tokens=False)}
                   for ids in [[0, 3, 4, 7], [3, 19, 4], [6, 6, 16], [5, 3, 5]]],
    }
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    hymba_cases()
    edge_cases()
