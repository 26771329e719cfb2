// Which instruction sets this x86-64 CPU has and the OS has enabled, for choosing a kernel
// backend at start-up. Swift cannot issue cpuid or xgetbv itself; these static inline
// functions are compiled into the Swift caller. On other architectures every answer is 0.
//
// An instruction set counts only when the CPU reports it (cpuid) AND the OS saves its
// registers on a context switch (XCR0 via xgetbv, after checking OSXSAVE): a CPU with AVX-512
// under an OS or hypervisor that leaves the ZMM state disabled must not run AVX-512 code.
#ifndef HYMBA_CPU_FEATURES_H
#define HYMBA_CPU_FEATURES_H

#if defined(__x86_64__)
#include <cpuid.h>

static inline unsigned long long hymba_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

// cpuid leaf 1 ecx and leaf 7 (subleaf 0) ebx/ecx, or 0s when a leaf is missing.
static inline void hymba_cpuid_leaves(unsigned int *l1ecx, unsigned int *l7ebx, unsigned int *l7ecx, unsigned int *ext1ecx) {
    unsigned int a, b, c, d;
    *l1ecx = *l7ebx = *l7ecx = *ext1ecx = 0;
    if (__get_cpuid_count(1, 0, &a, &b, &c, &d)) *l1ecx = c;
    if (__get_cpuid_max(0, 0) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) { *l7ebx = b; *l7ecx = c; }
    if (__get_cpuid_max(0x80000000, 0) >= 0x80000001 && __get_cpuid_count(0x80000001, 0, &a, &b, &c, &d)) *ext1ecx = c;
}

// The OS saves XMM and YMM state (XCR0 bits 1, 2).
static inline int hymba_os_saves_ymm(unsigned int l1ecx) {
    return (l1ecx & (1u << 27)) && (hymba_xcr0() & 0x6) == 0x6;
}

// The OS also saves the AVX-512 state: opmask, ZMM0-15 upper halves, ZMM16-31 (bits 5-7).
static inline int hymba_os_saves_zmm(unsigned int l1ecx) {
    return hymba_os_saves_ymm(l1ecx) && (hymba_xcr0() & 0xE6) == 0xE6;
}

// x86-64-v3 as the AVX2 backend is compiled (-target-cpu haswell): AVX2, FMA, F16C, BMI1,
// BMI2, LZCNT, MOVBE, POPCNT, with the YMM state enabled.
static inline int hymba_cpu_has_avx2_backend(void) {
    unsigned int l1ecx, l7ebx, l7ecx, ext1ecx;
    hymba_cpuid_leaves(&l1ecx, &l7ebx, &l7ecx, &ext1ecx);
    int fma = (l1ecx >> 12) & 1, movbe = (l1ecx >> 22) & 1, popcnt = (l1ecx >> 23) & 1, f16c = (l1ecx >> 29) & 1;
    int avx = (l1ecx >> 28) & 1;
    int bmi1 = (l7ebx >> 3) & 1, avx2 = (l7ebx >> 5) & 1, bmi2 = (l7ebx >> 8) & 1;
    int lzcnt = (ext1ecx >> 5) & 1;
    return avx && fma && movbe && popcnt && f16c && bmi1 && avx2 && bmi2 && lzcnt && hymba_os_saves_ymm(l1ecx);
}

// AVX-512 F, CD, BW, DQ, VL and VNNI as the AVX-512 backend is compiled (-target-cpu
// cascadelake), with the ZMM state enabled. AVX-512F alone (Skylake-X has no VNNI) is not enough.
static inline int hymba_cpu_has_avx512_backend(void) {
    unsigned int l1ecx, l7ebx, l7ecx, ext1ecx;
    hymba_cpuid_leaves(&l1ecx, &l7ebx, &l7ecx, &ext1ecx);
    int f = (l7ebx >> 16) & 1, dq = (l7ebx >> 17) & 1, cd = (l7ebx >> 28) & 1, bw = (l7ebx >> 30) & 1, vl = (l7ebx >> 31) & 1;
    int vnni = (l7ecx >> 11) & 1;
    return hymba_cpu_has_avx2_backend() && f && dq && cd && bw && vl && vnni && hymba_os_saves_zmm(l1ecx);
}
#else
static inline int hymba_cpu_has_avx2_backend(void) { return 0; }
static inline int hymba_cpu_has_avx512_backend(void) { return 0; }
#endif

#endif
