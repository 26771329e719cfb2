import HymbaFormat

/// Element type of the key/value caches.
public enum KVType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Exact: keys and values as computed.
    case f32
    /// IEEE binary16 (half the memory; keys and values rounded when stored).
    case f16
    /// int8 with one f32 scale per position and head (max|x|/127, codes rounded half to even):
    /// a quarter of f32 plus 8 bytes per position and head (`--kv-type q8`).
    case q8

    /// Bytes of one regular position's keys and values in a cache of `kvHeads` heads.
    public func slotBytes(kvHeads: Int, keyDim: Int, valueDim: Int) -> Int {
        switch self {
        case .f32: return kvHeads * (keyDim + valueDim) * 4
        case .f16: return kvHeads * (keyDim + valueDim) * 2
        case .q8: return kvHeads * (keyDim + valueDim + 2 * 4)
        }
    }

    public var description: String { rawValue }
}

/// The keys and values of one producer layer (MODEL.md 2a), read by the producer and by every
/// consumer of its `kv_reuse_group`.
///
/// Slots: the M meta positions live in slots 0..<M; a regular position p ≥ M lives in slot
/// `M + (p − M) mod regularSlots`. A cache that must serve a global layer has
/// `regularSlots = ctx` (it never wraps); a purely local group keeps a ring of
/// `min(ctx, W + chunk)` regular slots: a query at p needs p−W … p, and a prefill chunk writes
/// up to `chunk` positions before its first query reads, so the ring must hold W + chunk of them
/// (W + 1 when decoding one token at a time). Memory therefore stays constant once the sequence
/// passes the window.
///
/// The M meta positions are kept in f32 (`metaKeys [Hkv, M, dk]`, `metaValues [Hkv, M, dv]`);
/// the regular ones in `type`, head-major so that one head's keys are contiguous over positions:
/// `keys [Hkv, regularSlots, dk]`, `values [Hkv, regularSlots, dv]` (f32, f16 bits or int8
/// codes), and for q8 `keyScales`/`valueScales [Hkv, regularSlots]`.
package final class KVCache {
    package let type: KVType
    package let kvHeads: Int
    package let keyDim: Int
    package let valueDim: Int
    package let metaSlots: Int
    package let regularSlots: Int
    package let keys: UnsafeMutableRawPointer
    package let values: UnsafeMutableRawPointer
    /// q8 only (else a 1-element placeholder): the scale of each (head, regular slot).
    package let keyScales: UnsafeMutablePointer<Float>
    package let valueScales: UnsafeMutablePointer<Float>
    /// The M meta positions are always kept exact (f32), whatever `type` is: every query
    /// attends to them (they act as attention sinks), so rounding them costs the most accuracy
    /// for the least memory. Layout `[Hkv, M, dk]` and `[Hkv, M, dv]`.
    package let metaKeys: UnsafeMutablePointer<Float>
    package let metaValues: UnsafeMutablePointer<Float>

    package var slots: Int { metaSlots + regularSlots }
    /// Bytes held by keys, values and scales together (what `MemoryReport` plans).
    package var bytes: Int {
        kvHeads * (keyDim + valueDim) * metaSlots * 4
            + regularSlots * type.slotBytes(kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim)
    }

    /// Bytes of one stored element of a regular key or value: 4 (f32), 2 (f16) or 1 (q8 code).
    package var elementBytes: Int {
        switch type { case .f32: return 4; case .f16: return 2; case .q8: return 1 }
    }

    package init(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, metaSlots: Int, regularSlots: Int) {
        self.type = type
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.metaSlots = metaSlots
        self.regularSlots = regularSlots
        func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            return p
        }
        func raw(_ n: Int) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, n))
            return p
        }
        metaKeys = floats(metaSlots * kvHeads * keyDim)
        metaValues = floats(metaSlots * kvHeads * valueDim)
        let e = type == .f32 ? 4 : type == .f16 ? 2 : 1
        keys = raw(regularSlots * kvHeads * keyDim * e)
        values = raw(regularSlots * kvHeads * valueDim * e)
        let scaled = type == .q8 ? regularSlots * kvHeads : 1
        keyScales = floats(scaled)
        valueScales = floats(scaled)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        keyScales.deallocate()
        valueScales.deallocate()
        metaKeys.deallocate()
        metaValues.deallocate()
    }

    @inline(__always)
    package func slot(_ p: Int) -> Int {
        p < metaSlots ? p : metaSlots + (p - metaSlots) % regularSlots
    }

    /// Index of (head g, regular slot s ≥ M) in the regular arrays.
    @inline(__always)
    private func regularIndex(_ g: Int, _ s: Int) -> Int { g * regularSlots + (s - metaSlots) }

    /// Stores position p's keys (Hkv·dk, already rotated) and values (Hkv·dv).
    package func write(position p: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        if p < metaSlots {
            for g in 0..<kvHeads {
                (metaKeys + (g * metaSlots + p) * keyDim).update(from: k + g * keyDim, count: keyDim)
                (metaValues + (g * metaSlots + p) * valueDim).update(from: v + g * valueDim, count: valueDim)
            }
            return
        }
        let s = slot(p)
        for g in 0..<kvHeads {
            let i = regularIndex(g, s)
            store(k + g * keyDim, count: keyDim, to: keys, index: i, scale: keyScales)
            store(v + g * valueDim, count: valueDim, to: values, index: i, scale: valueScales)
        }
    }

    /// Reads position p's keys and values back as fp32 (meta prefix extraction, tests).
    package func read(position p: Int, keys k: UnsafeMutablePointer<Float>, values v: UnsafeMutablePointer<Float>) {
        if p < metaSlots {
            for g in 0..<kvHeads {
                (k + g * keyDim).update(from: metaKeys + (g * metaSlots + p) * keyDim, count: keyDim)
                (v + g * valueDim).update(from: metaValues + (g * metaSlots + p) * valueDim, count: valueDim)
            }
            return
        }
        let s = slot(p)
        for g in 0..<kvHeads {
            let i = regularIndex(g, s)
            load(from: keys, index: i, count: keyDim, scale: keyScales, into: k + g * keyDim)
            load(from: values, index: i, count: valueDim, scale: valueScales, into: v + g * valueDim)
        }
    }

    /// Whether widened entries come in `PairOrder` (f16) rather than in natural order.
    package var widensInPairOrder: Bool { type == .f16 }

    /// Where one head's regular keys or values are stored, slot by slot, for the kernels that
    /// widen entries themselves: `row(s)` is slot s's (≥ M) dim elements of `elementBytes`.
    /// A value taken once per head, so a loop over the slots does no more than one multiply-add.
    package struct StoredRows {
        let base: UnsafeRawPointer
        let stride: Int
        let metaSlots: Int
        @inline(__always)
        package func row(_ s: Int) -> UnsafeRawPointer { base + stride * (s - metaSlots) }
    }

    /// Head g's stored regular keys.
    package func storedKeys(head g: Int) -> StoredRows {
        StoredRows(base: UnsafeRawPointer(keys) + elementBytes * keyDim * regularIndex(g, metaSlots),
                   stride: elementBytes * keyDim, metaSlots: metaSlots)
    }

    /// Head g's stored regular values.
    package func storedValues(head g: Int) -> StoredRows {
        StoredRows(base: UnsafeRawPointer(values) + elementBytes * valueDim * regularIndex(g, metaSlots),
                   stride: elementBytes * valueDim, metaSlots: metaSlots)
    }

    /// Head g's key at regular slot s (≥ M) as fp32: read in place for f32, else widened into
    /// `buffer` (keyDim floats), in `PairOrder` for f16 and natural order for q8.
    @inline(__always)
    package func widenKey(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let i = regularIndex(g, s)
        return widen(keys, index: i, count: keyDim, scale: keyScales[type == .q8 ? i : 0], into: buffer)
    }

    /// Head g's value at regular slot s, as `widenKey`.
    @inline(__always)
    package func widenValue(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let i = regularIndex(g, s)
        return widen(values, index: i, count: valueDim, scale: valueScales[type == .q8 ? i : 0], into: buffer)
    }

    @inline(__always)
    private func widen(_ base: UnsafeMutableRawPointer, index: Int, count: Int, scale: Float,
                       into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let element = index * count
        switch type {
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
                let (even, odd) = PairOrder.widen(src + 2 * i)
                out.storeBytes(of: even, toByteOffset: 4 * i, as: SIMD16<Float>.self)
                out.storeBytes(of: odd, toByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                i += 32
            }
            while i < count { buffer[i] = HalfFloat.f16ToFloat(src.load(unalignedAt: 2 * i, as: UInt16.self)); i += 1 }
            return UnsafePointer(buffer)
        }
    }

    @inline(__always)
    private func store(_ src: UnsafePointer<Float>, count: Int, to base: UnsafeMutableRawPointer, index i: Int,
                       scale: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            (base + 4 * i * count).copyMemory(from: src, byteCount: 4 * count)
        case .f16:
            let dst = (base + 2 * i * count).assumingMemoryBound(to: UInt16.self)
            for j in 0..<count { dst[j] = HalfFloat.floatToF16(src[j]) }
        case .q8:
            scale[i] = KVInt8.quantize(src, count, into: (base + i * count).assumingMemoryBound(to: Int8.self))
        }
    }

    @inline(__always)
    private func load(from base: UnsafeMutableRawPointer, index i: Int, count: Int, scale: UnsafeMutablePointer<Float>,
                      into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: base + 4 * i * count, byteCount: 4 * count)
        case .f16:
            let src = (base + 2 * i * count).assumingMemoryBound(to: UInt16.self)
            for j in 0..<count { dst[j] = HalfFloat.f16ToFloat(src[j]) }
        case .q8:
            let src = (base + i * count).assumingMemoryBound(to: Int8.self)
            for j in 0..<count { dst[j] = scale[i] * Float(src[j]) }
        }
    }
}

/// The int8 arithmetic of the q8 KV cache: one head's keys or values at one position as int8
/// codes q with a scale d = max|x|/127 (x ≈ d·q; all codes 0 and d = 0 for a zero vector).
package enum KVInt8 {
    /// Encodes `n` floats; returns the scale.
    @inline(__always)
    package static func quantize(_ x: UnsafePointer<Float>, _ n: Int, into q: UnsafeMutablePointer<Int8>) -> Float {
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
    @inline(__always)
    package static func widen(_ q: UnsafeRawPointer, _ n: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
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
