/// Unaligned vector loads that are always inlined.
///
/// The standard library's `loadUnaligned(fromByteOffset:as:)` is an ordinary inlinable
/// function. In the large functions the kernels are inlined into (`HymbaSession.linear`,
/// `layerForward`), the optimizer stops inlining ordinary calls once a caller has grown past
/// its size limit, and the loads were left as calls that return their 64-byte vectors through
/// memory: 14% of decode time in `perf` (125m q4, one thread). These wrappers are
/// `@inline(__always)`, so they are inlined whatever the caller's size, and are small enough
/// that the load inside them is always inlined first.
extension UnsafeRawPointer {
    @inline(__always)
    func load<T: BitwiseCopyable>(unalignedAt offset: Int = 0, as type: T.Type) -> T {
        loadUnaligned(fromByteOffset: offset, as: type)
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always)
    func load<T: BitwiseCopyable>(unalignedAt offset: Int = 0, as type: T.Type) -> T {
        loadUnaligned(fromByteOffset: offset, as: type)
    }
}
