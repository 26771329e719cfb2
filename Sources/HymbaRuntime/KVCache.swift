import HymbaFormat
import HymbaKernels
import HymbaKernelsPortable

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

    /// The view the attention kernels read this cache through.
    package var attentionView: AttentionCache {
        let element: AttentionCache.Element
        switch type { case .f32: element = .f32; case .f16: element = .f16; case .q8: element = .q8 }
        return AttentionCache(element: element, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim,
                              metaSlots: metaSlots, regularSlots: regularSlots, keys: keys, values: values,
                              keyScales: keyScales, valueScales: valueScales, metaKeys: metaKeys, metaValues: metaValues)
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
