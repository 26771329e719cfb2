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

#if HYMBA_AVX512VNNI && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// The first `count` (0…16) floats of a 16-lane vector, loaded or stored without touching the
/// memory past them: one masked move on AVX-512, a copy through the stack elsewhere. Setting
/// lanes one at a time in a loop compiles to far worse code (per lane a compare, a masked
/// broadcast and a stack round trip).
enum PartialVector {
    /// The `count` floats at p, the other lanes 0.
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, count: Int) -> SIMD16<Float> {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        return unsafeBitCast(_mm512_maskz_loadu_ps(mask(count), p), to: SIMD16<Float>.self)
        #else
        var v = SIMD16<Float>()
        withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: 4 * count) }
        return v
        #endif
    }

    /// Lanes 0 ..< count of v to p.
    @inline(__always)
    static func store(_ v: SIMD16<Float>, to p: UnsafeMutablePointer<Float>, count: Int) {
        #if HYMBA_AVX512VNNI && arch(x86_64)
        _mm512_mask_storeu_ps(p, mask(count), unsafeBitCast(v, to: __m512.self))
        #else
        withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: 4 * count) }
        #endif
    }

    #if HYMBA_AVX512VNNI && arch(x86_64)
    @inline(__always)
    private static func mask(_ count: Int) -> UInt16 { UInt16(truncatingIfNeeded: (1 << count) - 1) }
    #endif
}
