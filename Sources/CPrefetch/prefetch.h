// A cache prefetch hint for the runtime's kernels. Swift has no prefetch, and the x86 headers
// offer it only as a macro (_mm_prefetch), which Swift cannot import; this static inline
// function is compiled into the Swift caller (Clang emits it inline) and becomes one
// `prefetcht0` on x86-64 or `prfm pldl1keep` on arm64. It only hints: it never faults, so a
// pointer past the end of a mapping is harmless.
#ifndef HYMBA_PREFETCH_H
#define HYMBA_PREFETCH_H

static inline __attribute__((always_inline)) void hymba_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
