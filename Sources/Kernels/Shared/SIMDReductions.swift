/// The SIMD building blocks every backend's kernels share: integer codes to floats, lane
/// reductions (sum, max) and lane-wise max. Each is `@inlinable @inline(__always)`, so a backend
/// target compiles it into its kernels with its own instruction set (this module itself is
/// compiled for the build's baseline and is never called in a hot loop).

/// Integer codes to fp32 without conversion instructions: a code c < 2²³ placed in the
/// mantissa of 2²³ (bits 0x4B00_0000) is the float 2²³ + c exactly; subtracting 2²³ leaves c.
/// Shifts, masks and one subtraction: lane operations every SIMD unit has at every width.
@inline(__always)
@inlinable public func codesToFloat(_ v: SIMD16<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD16<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD16<Float>.self) - bias
}

@inline(__always)
@inlinable public func codesToFloat(_ v: SIMD8<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD8<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD8<Float>.self) - bias
}

@inline(__always)
@inlinable public func codesToFloat(_ v: SIMD4<UInt32>, shift: UInt32, mask: UInt32, bias: Float) -> SIMD4<Float> {
    unsafeBitCast(((v &>> shift) & mask) | 0x4B00_0000, to: SIMD4<Float>.self) - bias
}

/// Two vectors as one, and (in `horizontalSum`) one as two, by bit casts: the standard
/// library's `init(lowHalf:highHalf:)`, `lowHalf` and `highHalf` are generic and were left as
/// calls inside the large kernels (8% of prefill time).
@inline(__always)
@inlinable public func joined<S: SIMDScalar>(_ a: SIMD8<S>, _ b: SIMD8<S>) -> SIMD16<S> { unsafeBitCast((a, b), to: SIMD16<S>.self) }

/// Sum of the lanes as a balanced tree (`SIMD.sum()` adds them one after another).
@inline(__always)
@inlinable public func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let (lo, hi) = unsafeBitCast(v, to: (SIMD8<Float>, SIMD8<Float>).self)
    return horizontalSum(lo + hi)
}

@inline(__always)
@inlinable public func horizontalSum(_ v: SIMD8<Float>) -> Float {
    let (lo, hi) = unsafeBitCast(v, to: (SIMD4<Float>, SIMD4<Float>).self)
    let b = lo + hi
    return b[0] + b[1] + (b[2] + b[3])
}

@inline(__always)
@inlinable public func horizontalSum(_ v: SIMD4<Float>) -> Float { v[0] + v[1] + (v[2] + v[3]) }

/// The larger of a and b in each lane, by one compare and one blend. The standard library's
/// `pointwiseMax` on float vectors goes lane by lane through the stack (it keeps `Swift.max`'s
/// handling of NaN); in the softmax's maximum pass that loop was most of the softmax's 7% of a
/// 125m q4 prefill (perf annotate).
/// Here a NaN in b is passed over, one in a kept.
/// (Concrete types: written generic, the compare was also built lane by lane.)
@inline(__always)
@inlinable public func lanewiseMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .> a) }

@inline(__always)
@inlinable public func lanewiseMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }

@inline(__always)
@inlinable public func lanewiseMax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }

/// The largest lane, by halving (`SIMD.max()` is also a lane-by-lane loop).
@inline(__always)
@inlinable public func horizontalMax(_ v: SIMD16<Float>) -> Float {
    let (lo, hi) = unsafeBitCast(v, to: (SIMD8<Float>, SIMD8<Float>).self)
    let (a, b) = unsafeBitCast(lanewiseMax(lo, hi), to: (SIMD4<Float>, SIMD4<Float>).self)
    let c = lanewiseMax(a, b)
    return max(max(c[0], c[1]), max(c[2], c[3]))
}
