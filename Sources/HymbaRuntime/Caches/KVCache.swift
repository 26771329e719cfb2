import HymbaFormat
import HymbaKernels

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

    /// The view the attention kernels read this cache through.
    package var attentionView: AttentionCache {
        let element: AttentionCache.Element
        switch type { case .f32: element = .f32; case .f16: element = .f16; case .q8: element = .q8 }
        return AttentionCache(element: element, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim,
                              metaSlots: metaSlots, regularSlots: regularSlots, keys: keys, values: values,
                              keyScales: storage.keyScales, valueScales: storage.valueScales,
                              metaKeys: metaKeys, metaValues: metaValues)
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
