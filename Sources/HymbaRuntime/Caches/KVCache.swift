import HymbaFormat

/// The keys and values of one producer layer (MODEL.md 2a) as the attention kernels read them,
/// for the producer and every consumer of its `kv_reuse_group`. Which positions it keeps is
/// decided by the cache type that owns it (`FullContextKVCache`, `SlidingWindowKVCache`); how
/// elements are stored, by its `KVElementStorage`.
///
/// Slots: the M meta positions live in slots 0..<M; a regular position p ≥ M lives in slot
/// `M + (p − M) mod regularSlots`. A cache that never wraps has `regularSlots` = ctx.
///
/// The M meta positions are kept in f32 (`metaKeys [Hkv, M, dk]`, `metaValues [Hkv, M, dv]`);
/// the regular ones in `type` (`storage`).
package final class KVCache {
    package let kvHeads: Int
    package let keyDim: Int
    package let valueDim: Int
    package let metaSlots: Int
    package let regularSlots: Int
    /// The regular slots' keys and values, in the element type.
    package let storage: KVElementStorage
    /// The M meta positions are always kept exact (f32), whatever `type` is: every query
    /// attends to them (they act as attention sinks), so rounding them costs the most accuracy
    /// for the least memory. Layout `[Hkv, M, dk]` and `[Hkv, M, dv]`.
    package let metaKeys: UnsafeMutablePointer<Float>
    package let metaValues: UnsafeMutablePointer<Float>

    package var type: KVType { storage.type }
    package var keys: UnsafeMutableRawPointer { storage.keys }
    package var values: UnsafeMutableRawPointer { storage.values }
    package var slots: Int { metaSlots + regularSlots }
    /// Bytes held by keys, values and scales together.
    package var bytes: Int {
        Self.bytes(type: type, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim, metaSlots: metaSlots, regularSlots: regularSlots)
    }

    /// Bytes a cache of these dimensions holds (what the memory plan counts).
    package static func bytes(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, metaSlots: Int, regularSlots: Int) -> Int {
        kvHeads * (keyDim + valueDim) * metaSlots * 4
            + KVElementStorage.bytes(type: type, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim, slots: regularSlots)
    }

    /// Bytes of one stored element of a regular key or value: 4 (f32), 2 (f16) or 1 (q8 code).
    package var elementBytes: Int { type.elementBytes }

    package init(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, metaSlots: Int, regularSlots: Int) {
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
        metaKeys = floats(metaSlots * kvHeads * keyDim)
        metaValues = floats(metaSlots * kvHeads * valueDim)
        storage = KVElementStorage(type: type, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim, slots: regularSlots)
    }

    deinit {
        storage.deallocate()
        metaKeys.deallocate()
        metaValues.deallocate()
    }

    @inline(__always)
    package func slot(_ p: Int) -> Int {
        p < metaSlots ? p : metaSlots + (p - metaSlots) % regularSlots
    }

    /// Stores position p's keys (Hkv·dk, already rotated) and values (Hkv·dv).
    package func write(position p: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        if p < metaSlots {
            for g in 0..<kvHeads {
                (metaKeys + (g * metaSlots + p) * keyDim).update(from: k + g * keyDim, count: keyDim)
                (metaValues + (g * metaSlots + p) * valueDim).update(from: v + g * valueDim, count: valueDim)
            }
            return
        }
        storage.write(slot: slot(p) - metaSlots, keys: k, values: v)
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
        storage.read(slot: slot(p) - metaSlots, keys: k, values: v)
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
        StoredRows(base: UnsafeRawPointer(keys) + elementBytes * keyDim * storage.index(g, 0),
                   stride: elementBytes * keyDim, metaSlots: metaSlots)
    }

    /// Head g's stored regular values.
    package func storedValues(head g: Int) -> StoredRows {
        StoredRows(base: UnsafeRawPointer(values) + elementBytes * valueDim * storage.index(g, 0),
                   stride: elementBytes * valueDim, metaSlots: metaSlots)
    }

    /// Head g's key at regular slot s (≥ M) as fp32: read in place for f32, else widened into
    /// `buffer` (keyDim floats), in `PairOrder` for f16 and natural order for q8.
    @inline(__always)
    package func widenKey(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        storage.widen(storage.keys, head: g, slot: s - metaSlots, count: keyDim, scales: storage.keyScales, into: buffer)
    }

    /// Head g's value at regular slot s, as `widenKey`.
    @inline(__always)
    package func widenValue(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        storage.widen(storage.values, head: g, slot: s - metaSlots, count: valueDim, scales: storage.valueScales, into: buffer)
    }

    /// Copies the meta positions from a prefix's arrays ([M, Hkv·dk] and [M, Hkv·dv]): the
    /// positions every sequence starts with, pinned in slots 0..<M.
    package func pinMeta(keys k: [Float], values v: [Float]) {
        k.withUnsafeBufferPointer { kb in
            v.withUnsafeBufferPointer { vb in
                for p in 0..<metaSlots {
                    write(position: p, keys: kb.baseAddress! + p * kvHeads * keyDim, values: vb.baseAddress! + p * kvHeads * valueDim)
                }
            }
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
