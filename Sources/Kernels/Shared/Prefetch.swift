import CPrefetch

/// Asks the memory system for bytes a kernel will read soon (`hymba_prefetch`, a read hint
/// for all cache levels), for every backend.
public enum Prefetch {
    /// How far ahead of the bytes in use the matrix-vector (decoding) kernels ask for a q4 row's
    /// weights: decoding streams every weight once per token, and the hardware prefetchers
    /// alone keep too few lines in flight to cover the memory latency at the rate two threads
    /// consume them. The distance is the latency times that rate with room to spare; q8 rows
    /// cost more work per byte, so they consume bytes more slowly and need less.
    @inlinable public static var q4RowDistance: Int { 8192 }
    /// As `q4RowDistance`, for q8 rows.
    @inlinable public static var q8RowDistance: Int { 4096 }

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
