/// Small SIMD helpers for the quantizers that compile to plain vector instructions on the
/// baseline targets (x86-64 without SSE4.1, arm64): no `rounded()`, `floor` or `fma`, which
/// become per-lane library calls there.
enum SIMDMath {
    typealias V8 = SIMD8<Float>

    /// 1.5·2²³: adding and subtracting it rounds to the nearest integer, ties to even, for
    /// |v| < 2²², and leaves the integer in the low mantissa bits of `v + roundingMagic`.
    static let roundingMagic: Float = 12_582_912

    /// Round to nearest, ties to even (|v| < 2²²; callers clamp first).
    @inline(__always)
    static func roundEven(_ v: V8) -> V8 { (v + roundingMagic) - roundingMagic }

    // min, max and clamp go through the SIMD4 halves: for SIMD4 the compiler turns these
    // selects into single minps/maxps (NEON fmin/fmax), for SIMD8 into mask arithmetic.

    @inline(__always)
    static func max(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }

    @inline(__always)
    static func min(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .< a) }

    @inline(__always)
    static func max(_ a: V8, _ b: V8) -> V8 {
        V8(lowHalf: max(a.lowHalf, b.lowHalf), highHalf: max(a.highHalf, b.highHalf))
    }

    @inline(__always)
    static func min(_ a: V8, _ b: V8) -> V8 {
        V8(lowHalf: min(a.lowHalf, b.lowHalf), highHalf: min(a.highHalf, b.highHalf))
    }

    @inline(__always)
    static func clamp(_ v: V8, _ lo: Float, _ hi: Float) -> V8 {
        min(max(v, V8(repeating: lo)), V8(repeating: hi))
    }

    @inline(__always)
    static func abs(_ v: V8) -> V8 {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: V8.self)
    }

    /// The low byte of each lane's integer value (two's complement for negative values);
    /// `v` must hold integers with |v| < 2²². Never traps, even on NaN (any byte comes out).
    @inline(__always)
    static func lowBytes(_ v: V8) -> SIMD8<UInt8> {
        SIMD8<UInt8>(truncatingIfNeeded: unsafeBitCast(v + roundingMagic, to: SIMD8<UInt32>.self))
    }
}
