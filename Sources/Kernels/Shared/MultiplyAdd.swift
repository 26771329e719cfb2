import Builtin

/// c + a·b in each lane, as one fused multiply-add (a single rounding) where the target has
/// one, else a multiply then an add: the kernels' accumulating products.
///
/// The standard library's `addingProduct` is always fused. For a target without fused
/// multiply-add instructions (the x86-64 baseline, which the portable backend of a generic
/// build is compiled for) LLVM keeps that promise with a call to libm's `fmaf` per lane: such
/// calls and the code around them took 92% of a 125m q4 prefill and decode (`perf`, generic
/// build, `HYMBA_BACKEND=portable`). LLVM's `fmuladd` is the operation wanted (C's contraction
/// of `a * b + c`): it is fused exactly when the function's target has a fused multiply-add. So
/// each backend target, compiling this inlined for its own instruction set, decides for itself:
/// the AVX2 and AVX-512 backends, and the portable kernels of a build for an FMA CPU (x86-64-v3
/// and later, every arm64), compute the same bits as with `addingProduct`; on the x86-64
/// baseline the product is rounded, then the sum, within the rounding-error bounds the kernels'
/// tests allow for a sum's order. (A C header's inline function was not inlined: compiled with
/// several threads, a module's code is split, and the function lands in one part only.)
@inlinable @inline(__always)
public func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
    unsafeBitCast(Builtin.int_fmuladd_Vec16xFPIEEE32(a._storage._value, b._storage._value, c._storage._value), to: SIMD16<Float>.self)
}

@inlinable @inline(__always)
public func multiplyAdd(_ a: Float, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
    multiplyAdd(SIMD16(repeating: a), b, c)
}

@inlinable @inline(__always)
public func multiplyAdd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(Builtin.int_fmuladd_Vec8xFPIEEE32(a._storage._value, b._storage._value, c._storage._value), to: SIMD8<Float>.self)
}

@inlinable @inline(__always)
public func multiplyAdd(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) -> SIMD4<Float> {
    unsafeBitCast(Builtin.int_fmuladd_Vec4xFPIEEE32(a._storage._value, b._storage._value, c._storage._value), to: SIMD4<Float>.self)
}
