# Sourced by the benchmark scripts (compare-llamacpp.sh, serve-load.sh, state-size.sh): where
# their cache lives, the Python venv, and llama.cpp built from the llama-cpp-python sdist on PyPI
# (vendor/llama.cpp) in one of two variants. Needs BENCH (tools/bench) set by the caller.
#
# HYMBA_BENCH_CACHE moves the cache (default tools/bench/cache, git-ignored); worktrees of one
# machine can share one, since nothing in it depends on the checkout but the Hymba models, which
# compare-llamacpp.sh re-synthesizes when the current hymba-convert no longer reads them.

die() { echo "error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

CACHE="${HYMBA_BENCH_CACHE:-$BENCH/cache}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
MODELS="$CACHE/models"

# The venv: llama.cpp's converter needs (torch, transformers, ...), matplotlib for the charts,
# cmake and ninja for the build. Sets VENV and PY and puts the venv first on PATH.
bench_venv() {
    VENV="$CACHE/venv"
    PY="$VENV/bin/python"
    if [[ ! -x "$PY" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$PY" -c "import torch, transformers, sentencepiece, numpy, matplotlib, google.protobuf" 2>/dev/null \
        || [[ ! -x "$VENV/bin/cmake" || ! -x "$VENV/bin/ninja" ]]; then
        # PyPI's default torch wheel pulls gigabytes of CUDA libraries; a local CPU-only wheel
        # (pip's find-links, e.g. /opt/wheels) is preferred when there is one. TORCH_SPEC overrides.
        local find_links=()
        if [[ -z "${TORCH_SPEC:-}" ]]; then
            TORCH_SPEC=torch
            for w in /opt/wheels/torch-*+cpu-*.whl; do
                [[ -e "$w" ]] && TORCH_SPEC="torch==$(basename "$w" | cut -d- -f2)" && find_links=(--find-links "$(dirname "$w")")
            done
        fi
        log "installing $TORCH_SPEC, transformers, sentencepiece, numpy, matplotlib, cmake, ninja into $VENV"
        "$VENV/bin/pip" install -q "${find_links[@]}" "$TORCH_SPEC" transformers sentencepiece safetensors numpy matplotlib \
            "protobuf<5" cmake ninja
    fi
    export PATH="$VENV/bin:$PATH"
}

# The newest llama-cpp-python sdist's vendored llama.cpp, downloaded once. Sets LLAMA_SRC and
# LLAMA_SOURCE (the sdist's name, for the reports).
llama_source() {
    LLAMA_SRC="$(ls -d "$CACHE"/llama-src/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | sort -V | tail -1 || true)"
    if [[ -z "$LLAMA_SRC" ]]; then
        log "downloading the llama-cpp-python sdist"
        mkdir -p "$CACHE/src" "$CACHE/llama-src"
        "$VENV/bin/pip" download -q --no-deps --no-binary llama-cpp-python llama-cpp-python -d "$CACHE/src"
        tar -xzf "$(ls "$CACHE"/src/llama_cpp_python-*.tar.gz | sort -V | tail -1)" -C "$CACHE/llama-src"
        LLAMA_SRC="$(ls -d "$CACHE"/llama-src/llama_cpp_python-*/vendor/llama.cpp | sort -V | tail -1)"
    fi
    LLAMA_SOURCE="$(basename "$(dirname "$(dirname "$LLAMA_SRC")")")"
}

# The two llama.cpp variants, each in its own build folder:
#  native: GGML_NATIVE=ON, everything the build machine has (AVX-512 and VNNI here);
#  avx2:   what an AVX2-only x86-64 (Haswell .. Zen 3) runs: AVX, AVX2, FMA, F16C, BMI2 on,
#          every AVX-512 extension, AVX-VNNI and AMX off.
declare -A LLAMA_VARIANT_FLAGS=(
    [native]="-DGGML_NATIVE=ON"
    [avx2]="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
declare -A LLAMA_VARIANT_DIR=([native]=llama-build [avx2]=llama-build-avx2)

# llama_build VARIANT TARGET...: builds the targets of that variant that are missing (static,
# Release, no tests/examples/UI; the server is on for llama-server and llama-cli). Sets
# LLAMA_BUILD (its folder; binaries in bin/) and LLAMA_FLAGS (its variant's CMake flags).
# An avx2 binary holding a zmm instruction is refused: the flags did not take.
llama_build() {
    local variant="$1"; shift
    [[ -n "${LLAMA_VARIANT_FLAGS[$variant]:-}" ]] || die "unknown llama.cpp variant '$variant' (native, avx2)"
    LLAMA_BUILD="$CACHE/${LLAMA_VARIANT_DIR[$variant]}"
    LLAMA_FLAGS="${LLAMA_VARIANT_FLAGS[$variant]}"
    local missing=() t
    for t in "$@"; do [[ -x "$LLAMA_BUILD/bin/$t" ]] || missing+=("$t"); done
    if ((${#missing[@]} > 0)); then
        llama_source
        local build_log="$CACHE/${LLAMA_VARIANT_DIR[$variant]}.log"
        log "building llama.cpp ($variant) ${missing[*]} (log: $build_log)"
        # shellcheck disable=SC2086 # LLAMA_FLAGS is a list of words
        {
            cmake -S "$LLAMA_SRC" -B "$LLAMA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release $LLAMA_FLAGS \
                -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
                -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF
            nice -n 15 cmake --build "$LLAMA_BUILD" --target "${missing[@]}" -j "$(nproc)"
        } >>"$build_log" 2>&1 || die "llama.cpp build failed: see $build_log"
    fi
    if [[ $variant == avx2 ]]; then
        for t in "$@"; do
            local zmm
            zmm=$(objdump -d --no-show-raw-insn "$LLAMA_BUILD/bin/$t" | grep -c '%zmm' || true)
            ((zmm == 0)) || die "$LLAMA_BUILD/bin/$t: $zmm instructions use zmm registers; the avx2 build must have none"
        done
    fi
}

# A free TCP port on 127.0.0.1 (the servers of serve-load.sh and state-size.sh listen only there).
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server LOG CMD...: runs a server in the background, its output in LOG; SERVER_PID is its
# PID, and it is stopped by that PID however the calling script ends.
start_server() {
    local server_log="$1"; shift
    log "starting $* (log: $server_log)"
    "$@" >"$server_log" 2>&1 &
    SERVER_PID=$!
    trap 'kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true' EXIT
}
