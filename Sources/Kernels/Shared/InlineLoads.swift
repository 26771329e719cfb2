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
    @inlinable public func load<T: BitwiseCopyable>(unalignedAt offset: Int = 0, as type: T.Type) -> T {
        loadUnaligned(fromByteOffset: offset, as: type)
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always)
    @inlinable public func load<T: BitwiseCopyable>(unalignedAt offset: Int = 0, as type: T.Type) -> T {
        loadUnaligned(fromByteOffset: offset, as: type)
    }
}

/// The first `count` (0…16) floats of a 16-lane vector, loaded or stored without touching the
/// memory past them, by a copy through the stack (the AVX-512 backend uses one masked move,
/// `VectorUnit.load(_:count:)`). Setting lanes one at a time in a loop compiles to far worse code
/// (per lane a compare, a masked broadcast and a stack round trip).
public enum PartialVector {
    /// The `count` floats at p, the other lanes 0.
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int) -> SIMD16<Float> {
        var v = SIMD16<Float>()
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: 4 * count) }
        return v
    }

    /// Lanes 0 ..< count of v to p.
    @inlinable @inline(__always)
    public static func store(_ v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>, count: Int) {
        withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: 4 * count) }
    }
}
