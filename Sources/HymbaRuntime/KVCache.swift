import HymbaFormat

/// Element type of the key/value caches.
public enum KVType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Exact: keys and values as computed.
    case f32
    /// IEEE binary16 (half the memory; keys and values rounded when stored).
    case f16

    public var bytesPerElement: Int { self == .f32 ? 4 : 2 }
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
/// Layout, head-major so that one head's keys are contiguous over positions:
/// `keys [Hkv, slots, dk]`, `values [Hkv, slots, dv]`, each element f32 or f16 bits.
package final class KVCache {
    package let type: KVType
    package let kvHeads: Int
    package let keyDim: Int
    package let valueDim: Int
    package let metaSlots: Int
    package let regularSlots: Int
    package let keys: UnsafeMutableRawPointer
    package let values: UnsafeMutableRawPointer
    /// The M meta positions are always kept exact (f32), whatever `type` is: every query
    /// attends to them (they act as attention sinks), so rounding them costs the most accuracy
    /// for the least memory. Layout `[Hkv, M, dk]` and `[Hkv, M, dv]`.
    package let metaKeys: UnsafeMutablePointer<Float>
    package let metaValues: UnsafeMutablePointer<Float>

    package var slots: Int { metaSlots + regularSlots }
    /// Bytes held by keys and values together.
    package var bytes: Int {
        kvHeads * (keyDim + valueDim) * (metaSlots * 4 + regularSlots * type.bytesPerElement)
    }

    package init(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, metaSlots: Int, regularSlots: Int) {
        self.type = type
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.metaSlots = metaSlots
        self.regularSlots = regularSlots
        let s = metaSlots + regularSlots
        metaKeys = .allocate(capacity: max(1, metaSlots * kvHeads * keyDim))
        metaValues = .allocate(capacity: max(1, metaSlots * kvHeads * valueDim))
        metaKeys.initialize(repeating: 0, count: max(1, metaSlots * kvHeads * keyDim))
        metaValues.initialize(repeating: 0, count: max(1, metaSlots * kvHeads * valueDim))
        keys = UnsafeMutableRawPointer.allocate(byteCount: max(1, s * kvHeads * keyDim * type.bytesPerElement), alignment: 64)
        values = UnsafeMutableRawPointer.allocate(byteCount: max(1, s * kvHeads * valueDim * type.bytesPerElement), alignment: 64)
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, s * kvHeads * keyDim * type.bytesPerElement))
        values.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, s * kvHeads * valueDim * type.bytesPerElement))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
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
        let s = slot(p)
        for g in 0..<kvHeads {
            store(k + g * keyDim, count: keyDim, to: keys, element: (g * slots + s) * keyDim)
            store(v + g * valueDim, count: valueDim, to: values, element: (g * slots + s) * valueDim)
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
            load(from: keys, element: (g * slots + s) * keyDim, count: keyDim, into: k + g * keyDim)
            load(from: values, element: (g * slots + s) * valueDim, count: valueDim, into: v + g * valueDim)
        }
    }

    /// Head g's key at regular slot s as fp32, in `PairOrder` for f16 (widened into `buffer`,
    /// keyDim floats) and in natural order for f32 (read in place).
    @inline(__always)
    package func widenKey(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        widen(keys, element: (g * slots + s) * keyDim, count: keyDim, into: buffer)
    }

    /// Head g's value at regular slot s, as `widenKey`.
    @inline(__always)
    package func widenValue(head g: Int, slot s: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        widen(values, element: (g * slots + s) * valueDim, count: valueDim, into: buffer)
    }

    @inline(__always)
    private func widen(_ base: UnsafeMutableRawPointer, element: Int, count: Int, into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        switch type {
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
            while i < count { buffer[i] = HalfFloat.f16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
            return UnsafePointer(buffer)
        }
    }

    @inline(__always)
    private func store(_ src: UnsafePointer<Float>, count: Int, to base: UnsafeMutableRawPointer, element: Int) {
        switch type {
        case .f32:
            (base + 4 * element).copyMemory(from: src, byteCount: 4 * count)
        case .f16:
            let dst = (base + 2 * element).assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] = HalfFloat.floatToF16(src[i]) }
        }
    }

    @inline(__always)
    private func load(from base: UnsafeMutableRawPointer, element: Int, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: base + 4 * element, byteCount: 4 * count)
        case .f16:
            let src = (base + 2 * element).assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] = HalfFloat.f16ToFloat(src[i]) }
        }
    }
}
