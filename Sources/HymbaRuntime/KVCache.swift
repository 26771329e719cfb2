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

    private var elementBytes: Int {
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

    /// q·k of head g's key at slot s (any slot, meta included).
    @inline(__always)
    package func keyDot(head g: Int, slot s: Int, _ q: UnsafePointer<Float>) -> Float {
        if s < metaSlots { return Dot.f32(UnsafeRawPointer(metaKeys + (g * metaSlots + s) * keyDim), q, keyDim) }
        let i = regularIndex(g, s)
        switch type {
        case .f32: return Dot.f32(keys + 4 * i * keyDim, q, keyDim)
        case .f16: return Dot.f16(keys + 2 * i * keyDim, q, keyDim)
        case .q8: return keyScales[i] * KVInt8.dot(keys + i * keyDim, q, keyDim)
        }
    }

    /// out += a · (head g's value at slot s).
    @inline(__always)
    package func addValue(_ a: Float, head g: Int, slot s: Int, into out: UnsafeMutablePointer<Float>) {
        if s < metaSlots {
            Attention.axpyF32(a, UnsafeRawPointer(metaValues + (g * metaSlots + s) * valueDim), out, valueDim)
            return
        }
        let i = regularIndex(g, s)
        switch type {
        case .f32: Attention.axpyF32(a, values + 4 * i * valueDim, out, valueDim)
        case .f16: Attention.axpyF16(a, values + 2 * i * valueDim, out, valueDim)
        case .q8: KVInt8.axpy(a * valueScales[i], values + i * valueDim, out, valueDim)
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

    /// Σ q[j]·x[j] over n codes (unscaled).
    @inline(__always)
    package static func dot(_ q: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            a0 += Dot.int8ToFloat(q.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += Dot.int8ToFloat(q.loadUnaligned(fromByteOffset: i + 8, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            a0 += Dot.int8ToFloat(q.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self)) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        var s = (a0 + a1).sum()
        while i < n { s += Float(q.load(fromByteOffset: i, as: Int8.self)) * x[i]; i += 1 }
        return s
    }

    /// y += a · q over n codes (a already includes the scale).
    @inline(__always)
    package static func axpy(_ a: Float, _ q: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let yr = UnsafeMutableRawPointer(y)
        var i = 0
        while i + 8 <= n {
            let s = yr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + a * Dot.int8ToFloat(q.loadUnaligned(fromByteOffset: i, as: SIMD8<UInt8>.self))
            yr.storeBytes(of: s, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += a * Float(q.load(fromByteOffset: i, as: Int8.self)); i += 1 }
    }
}
