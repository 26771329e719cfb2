import CPrefetch

/// Asks the memory system for bytes a kernel will read soon (`hymba_prefetch`, a read hint
/// for all cache levels), for every backend.
public enum Prefetch {
    /// Prefetches the cache lines of `bytes` bytes from `p` (a plain loop: a `stride` sequence
    /// was left as a call in the large callers, 8% of decoding).
    @inlinable @inline(__always)
    public static func lines(_ p: UnsafeRawPointer, bytes: Int) {
        var o = 0
        while o < bytes {
            hymba_prefetch(p + o)
            o += 64
        }
    }
}
