#!/usr/bin/env python3
"""Checks a generic x86-64 build (HYMBA_TARGET_CPU=generic) for instructions outside their backend.

Every kernel backend is its own target compiled for its own CPU (README "Kernel backends"), and
the runtime runs a backend only on CPUs that have its instructions. That holds only if no code
the other backends or the baseline run was compiled with those instructions. Swift emits
specializations of generic code and some standard library shims in every module that uses them,
and the linker keeps one copy per symbol name: if it keeps a backend's copy, baseline code calls
it too. This script disassembles a binary and lists:
  - functions with AVX-512 instructions (zmm, opmask registers, VNNI) that do not belong to the
    AVX-512 backend (their symbol does not name X86AVX512, or they are not clang intrinsics);
  - functions with VEX (AVX/AVX2) instructions that belong to neither x86 backend, and who
    calls them (a baseline caller would fault on a CPU without AVX).
Exit status 1 when the first list is not empty (an AVX2-only CPU could fault), else 0; the
second list is printed as a warning (only CPUs without AVX, older than 2011 or low-end Atoms,
are affected).

    HYMBA_TARGET_CPU=generic swift build -c release --scratch-path .build-generic
    tools/check-kernel-isolation.py .build-generic/release/hymba-edge
"""
import collections
import re
import subprocess
import sys

EVEX = re.compile(r'%zmm|%k[1-7]\b|\{%k|vpdpbusd|vpdpwssd|vpmov[dq]2m|vpermt2|vpermi2')
VEX = re.compile(r'^v[a-z0-9]+\s')


def owner(name):
    if 'X86AVX512' in name or name.startswith('_mm512_') or name.startswith('_mm256_') or name.startswith('_mm_'):
        return 'avx512'
    if 'X86AVX2' in name:
        return 'avx2'
    return 'baseline'


def main(binary):
    dis = subprocess.run(['objdump', '-d', '--no-show-raw-insn', binary], capture_output=True, text=True, check=True).stdout
    evex, vex = collections.Counter(), collections.Counter()
    callers = collections.defaultdict(set)
    calls = []
    cur = None
    for line in dis.splitlines():
        m = re.match(r'^[0-9a-f]+ <(.*)>:$', line)
        if m:
            cur = m.group(1)
            continue
        if cur is None or '\t' not in line:
            continue
        ins = line.split('\t')[-1].strip()
        if EVEX.search(ins):
            evex[cur] += 1
        elif VEX.search(ins):
            vex[cur] += 1
        c = re.search(r'(?:call|jmp)\s+[0-9a-f]+ <([^>+]*)', ins)
        if c:
            calls.append((cur, c.group(1)))
    for caller, callee in calls:
        callers[callee].add(owner(caller))
    bad512 = sorted(n for n in evex if owner(n) != 'avx512')
    badvex = sorted(n for n in vex if owner(n) == 'baseline')
    print(f"{binary}: {len(evex)} functions with AVX-512 instructions, {len(bad512)} outside the AVX-512 backend")
    for n in bad512:
        print(f"  AVX-512 in {n} (called from: {', '.join(sorted(callers[n])) or 'nobody'})")
    print(f"{len(vex)} functions with AVX/AVX2 instructions, {len(badvex)} outside the x86 backends")
    for n in badvex:
        print(f"  warning: AVX in {n} (called from: {', '.join(sorted(callers[n])) or 'nobody'})")
    return 1 if bad512 else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
