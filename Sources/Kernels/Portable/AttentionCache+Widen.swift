import HymbaKernels
import HymbaFormat

extension AttentionCache {
    /// Head g's key at regular slot s (≥ M) as fp32: read in place for f32, else widened into
    /// `buffer` (keyDim floats), in `PairOrder` for f16 and natural order for q8.
    @inlinable @inline(__always)
    public func widenKey<V: VectorUnit>(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>, vectors: V.Type) -> UnsafePointer<Float> {
        let i = regularIndex(g, s)
        return widen(keys, index: i, count: keyDim, scale: keyScales[element == .q8 ? i : 0], into: buffer, vectors: V.self)
    }

    /// Head g's value at regular slot s, as `widenKey`.
    @inlinable @inline(__always)
    public func widenValue<V: VectorUnit>(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>, vectors: V.Type) -> UnsafePointer<Float> {
        let i = regularIndex(g, s)
        return widen(values, index: i, count: valueDim, scale: valueScales[element == .q8 ? i : 0], into: buffer, vectors: V.self)
    }

    @inlinable @inline(__always)
    func widen<V: VectorUnit>(_ base: UnsafeMutableRawPointer, index: Int, count: Int, scale: Float,
                              into buffer: UnsafeMutablePointer<Float>, vectors: V.Type) -> UnsafePointer<Float> {
        let element = index * count
        switch self.element {
        case .q8:
            KVInt8.widen(base + element, count, scale: scale, into: buffer)
            return UnsafePointer(buffer)
        case .f32:
            return UnsafePointer((base + 4 * element).assumingMemoryBound(to: Float.self))
        case .f16:
            let src = UnsafeRawPointer(base + 2 * element)
            let out = UnsafeMutableRawPointer(buffer)
            var i = 0
            while i + 32 <= count {
                let (even, odd) = PairOrder.widen(src + 2 * i, vectors: V.self)
                out.storeBytes(of: even, toByteOffset: 4 * i, as: SIMD16<Float>.self)
                out.storeBytes(of: odd, toByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                i += 32
            }
            while i < count { buffer[i] = HalfFloat.f16ToFloat(src.load(unalignedAt: 2 * i, as: UInt16.self)); i += 1 }
            return UnsafePointer(buffer)
        }
    }
}

/// The int8 arithmetic of the q8 KV cache: one head's keys or values at one position as int8
/// codes q with a scale d = max|x|/127 (x ≈ d·q; all codes 0 and d = 0 for a zero vector).
public enum KVInt8 {
    /// Encodes `n` floats; returns the scale.
    @inlinable @inline(__always)
    public static func quantize(_ x: UnsafePointer<Float>, _ n: Int, into q: UnsafeMutablePointer<Int8>) -> Float {
        var m: Float = 0
        for j in 0..<n { m = max(m, abs(x[j])) }
        guard m > 0, m.isFinite else {
            q.initialize(repeating: 0, count: n)
            return m.isFinite ? 0 : .nan
        }
        let d = m / 127, inv = 127 / m
        for j in 0..<n { q[j] = Int8(max(-127, min(127, (x[j] * inv).rounded(.toNearestOrEven)))) }
        return d
    }

    /// n codes × `scale` → fp32, natural order. Codes are widened with the float trick
    /// (`codesToFloat`): the byte flipped by 0x80 is q + 128 in a float's mantissa.
    @inlinable @inline(__always)
    public static func widen(_ q: UnsafeRawPointer, _ n: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let o = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= n {
            // 16 codes as 4 lanes of 4 bytes; byte k of lane L is element 4L + k.
            let v = q.load(unalignedAt: i, as: SIMD4<UInt32>.self) ^ 0x8080_8080
            let b0 = codesToFloat(v, shift: 0, mask: 0xFF, bias: 8_388_736), b1 = codesToFloat(v, shift: 8, mask: 0xFF, bias: 8_388_736)
            let b2 = codesToFloat(v, shift: 16, mask: 0xFF, bias: 8_388_736), b3 = codesToFloat(v, shift: 24, mask: 0xFF, bias: 8_388_736)
            for L in 0..<4 {
                o.storeBytes(of: SIMD4<Float>(b0[L], b1[L], b2[L], b3[L]) * scale, toByteOffset: 4 * (i + 4 * L), as: SIMD4<Float>.self)
            }
            i += 16
        }
        while i < n { out[i] = scale * Float(q.load(fromByteOffset: i, as: Int8.self)); i += 1 }
    }
}
