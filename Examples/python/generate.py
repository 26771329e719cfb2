#!/usr/bin/env python3
"""Generate text with libhymba from Python, through ctypes only (no third-party packages).

    python3 generate.py [--lib PATH] [-m MODEL] [-n MAX_TOKENS] [--temp T] [-s SEED] [-c N_CTX] [-t THREADS] PROMPT

The text is streamed to stdout as it is produced (the prompt is not echoed); a summary goes
to stderr. The library is looked for at --lib, then $HYMBA_LIB, then where the README builds
it (.build/release/libhymba.so in this repository), then as "libhymba.so" on the system's
library path (see README.md). The structs below mirror include/hymba.h field for field; the
tests compare their sizes and offsets with the C compiler's.
"""
import argparse
import ctypes
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# hymba_status
HYMBA_OK = 0
HYMBA_ERR_INVALID_ARGUMENT = 1
HYMBA_ERR_IO = 2
HYMBA_ERR_FORMAT = 3
HYMBA_ERR_CHECKSUM = 4
HYMBA_ERR_UNSUPPORTED = 5
HYMBA_ERR_MEMORY_BUDGET = 6
HYMBA_ERR_CONTEXT_FULL = 7
HYMBA_ERR_CANCELLED = 8
HYMBA_ERR_INTERNAL = 9


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("memory_budget_bytes", ctypes.c_uint64),
        ("threads", ctypes.c_int32),
        ("verify_checksums", ctypes.c_int32),
    ]


class ContextParams(ctypes.Structure):
    _fields_ = [
        ("n_ctx", ctypes.c_int32),
        ("kv_type", ctypes.c_int32),
    ]


class SamplingParams(ctypes.Structure):
    _fields_ = [
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("min_p", ctypes.c_float),
        ("repeat_penalty", ctypes.c_float),
        ("repeat_last_n", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("max_tokens", ctypes.c_int32),
    ]


# int32_t (*hymba_token_callback)(const char *piece, int32_t token, void *user_data)
TokenCallback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p)


class HymbaError(Exception):
    def __init__(self, status, message):
        super().__init__(message if status is None else f"{message} (status {status})")
        self.status = status


# Where `swift build -c release --product hymba` puts the library (the README's build).
BUILT_LIB = REPO / ".build" / "release" / "libhymba.so"


def library_path(given=None):
    """The library to load: --lib, $HYMBA_LIB, the repository's build, the system's."""
    if given:
        return given
    if os.environ.get("HYMBA_LIB"):
        return os.environ["HYMBA_LIB"]
    return str(BUILT_LIB) if BUILT_LIB.exists() else "libhymba.so"


def load(path=None):
    """Loads libhymba and declares the functions this example uses."""
    path = library_path(path)
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise HymbaError(None, f"cannot load {path} ({e}); build it with `swift build -c release --product hymba` "
                               "in the repository, or point --lib or HYMBA_LIB at a libhymba.so") from None
    status = ctypes.c_int  # a C enum
    model_p, context_p = ctypes.c_void_p, ctypes.c_void_p
    declare = [
        ("hymba_version", ctypes.c_char_p, []),
        ("hymba_last_error", ctypes.c_char_p, []),
        ("hymba_model_default_params", ModelParams, []),
        ("hymba_model_open", status, [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.POINTER(model_p)]),
        ("hymba_model_free", None, [model_p]),
        ("hymba_model_vocab_size", ctypes.c_int32, [model_p]),
        ("hymba_context_default_params", ContextParams, []),
        ("hymba_context_new", status, [model_p, ctypes.POINTER(ContextParams), ctypes.POINTER(context_p)]),
        ("hymba_context_free", None, [context_p]),
        ("hymba_context_n_tokens", ctypes.c_int32, [context_p]),
        ("hymba_sampling_default_params", SamplingParams, []),
        ("hymba_generate", status, [context_p, ctypes.c_char_p, ctypes.POINTER(SamplingParams), TokenCallback, ctypes.c_void_p]),
    ]
    for name, restype, argtypes in declare:
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = argtypes
    return lib


def check(lib, status):
    if status != HYMBA_OK:
        raise HymbaError(status, lib.hymba_last_error().decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("prompt", help="the text to continue")
    ap.add_argument("--lib", default=None,
                    help="path of libhymba.so; when not given (%(default)s): $HYMBA_LIB, else the repository's .build/release/libhymba.so, "
                         "else libhymba.so on the system's library path")
    ap.add_argument("-m", "--model", default=str(REPO / "models" / "tiny-code-hymba-q8.hymba"), help="the .hymba model file")
    ap.add_argument("-n", "--max-tokens", type=int, default=64, help="most tokens to generate (-1: until the context is full)")
    ap.add_argument("--temp", "--temperature", dest="temperature", type=float, default=0.0, help="temperature (0: greedy)")
    ap.add_argument("-s", "--seed", type=int, default=0, help="random seed of the sampler")
    ap.add_argument("-c", "--ctx", type=int, default=0, help="context length in tokens (0: the model's)")
    ap.add_argument("-t", "--threads", type=int, default=0, help="threads for the kernels (0: one per core)")
    args = ap.parse_args()

    try:
        lib = load(args.lib)
    except HymbaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model, ctx = ctypes.c_void_p(), ctypes.c_void_p()
    try:
        params = lib.hymba_model_default_params()
        params.threads = args.threads
        check(lib, lib.hymba_model_open(args.model.encode(), ctypes.byref(params), ctypes.byref(model)))
        cparams = lib.hymba_context_default_params()
        cparams.n_ctx = args.ctx
        check(lib, lib.hymba_context_new(model, ctypes.byref(cparams), ctypes.byref(ctx)))
        sampling = lib.hymba_sampling_default_params()
        sampling.temperature = args.temperature
        sampling.max_tokens = args.max_tokens
        sampling.seed = args.seed
        generated = 0

        @TokenCallback
        def on_piece(piece, token, _user_data):
            nonlocal generated
            if token >= 0:
                generated += 1
            # Each piece is whole UTF-8 characters: decoding piece by piece is safe.
            sys.stdout.write(piece.decode("utf-8"))
            sys.stdout.flush()
            return 0

        status = lib.hymba_generate(ctx, args.prompt.encode(), ctypes.byref(sampling), on_piece, None)
        sys.stdout.write("\n")
        sys.stdout.flush()
        if status == HYMBA_ERR_CONTEXT_FULL:
            print(f"[{generated} tokens generated: context full]", file=sys.stderr)
        else:
            check(lib, status)
            print(f"[{generated} tokens generated, {lib.hymba_context_n_tokens(ctx)} held by the context; "
                  f"libhymba {lib.hymba_version().decode()}]", file=sys.stderr)
    except HymbaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        lib.hymba_context_free(ctx)  # NULL (never created) is ignored
        lib.hymba_model_free(model)  # likewise
    return 0


if __name__ == "__main__":
    sys.exit(main())
