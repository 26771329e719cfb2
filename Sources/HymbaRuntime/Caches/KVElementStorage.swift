import HymbaFormat
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
        kvHeads * ((keyDim + valueDim) * elementBytes + (self == .q8 ? 2 * 4 : 0))
    }

    /// Bytes of one stored element of a regular key or value: 4 (f32), 2 (f16) or 1 (q8 code).
    public var elementBytes: Int {
        switch self { case .f32: return 4; case .f16: return 2; case .q8: return 1 }
    }

    public var description: String { rawValue }
}

/// How the regular (non-meta) keys and values of one cache are stored: f32, f16 bits or int8
/// codes with a scale per (head, slot). The caches hold one and never look at the element type
/// themselves; it is a closed enum switched inside each accessor (inlined: the attention
/// kernels read through it per slot, where a protocol's dynamic call would cost).
///
/// Layout, head-major so that one head's keys are contiguous over slots:
/// `keys [Hkv, slots, dk]`, `values [Hkv, slots, dv]`, and for q8 `keyScales`/`valueScales [Hkv, slots]`.
package struct KVElementStorage {
    package let type: KVType
    package let kvHeads: Int
    package let keyDim: Int
    package let valueDim: Int
    /// Slots held per head.
    package let slots: Int
    package let keys: UnsafeMutableRawPointer
    package let values: UnsafeMutableRawPointer
    /// q8 only (else a 1-element placeholder): the scale of each (head, slot).
    package let keyScales: UnsafeMutablePointer<Float>
    package let valueScales: UnsafeMutablePointer<Float>

    /// Bytes `allocate` takes for these dimensions.
    package static func bytes(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, slots: Int) -> Int {
        slots * type.slotBytes(kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim)
    }

    /// Zeroed storage; `deallocate` frees it.
    package init(type: KVType, kvHeads: Int, keyDim: Int, valueDim: Int, slots: Int) {
        self.type = type
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.slots = slots
        func raw(_ n: Int) -> UnsafeMutableRawPointer {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, n))
            return p
        }
        let e = type.elementBytes
        keys = raw(slots * kvHeads * keyDim * e)
        values = raw(slots * kvHeads * valueDim * e)
        let scaled = type == .q8 ? slots * kvHeads : 1
        func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            p.initialize(repeating: 0, count: n)
            return p
        }
        keyScales = floats(scaled)
        valueScales = floats(scaled)
    }

    package func deallocate() {
        keys.deallocate()
        values.deallocate()
        keyScales.deallocate()
        valueScales.deallocate()
    }

    /// Index of (head g, slot s) in the arrays.
    @inline(__always)
    package func index(_ g: Int, _ s: Int) -> Int { g * slots + s }

    // MARK: Rows as fp32

    /// Stores slot s's keys (Hkv·dk) and values (Hkv·dv), rounding to the element type.
    @inline(__always)
    package func write(slot s: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        for g in 0..<kvHeads {
            let i = index(g, s)
            store(k + g * keyDim, count: keyDim, to: keys, index: i, scale: keyScales)
            store(v + g * valueDim, count: valueDim, to: values, index: i, scale: valueScales)
        }
    }

    /// Slot s's keys and values as fp32.
    package func read(slot s: Int, keys k: UnsafeMutablePointer<Float>, values v: UnsafeMutablePointer<Float>) {
        for g in 0..<kvHeads {
            let i = index(g, s)
            load(from: keys, index: i, count: keyDim, scale: keyScales, into: k + g * keyDim)
            load(from: values, index: i, count: valueDim, scale: valueScales, into: v + g * valueDim)
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

    // MARK: Rows as stored (saved state, snapshots)

    /// Bytes of one slot as stored: per head its keys and values, and for q8 their two scales.
    package var storedSlotBytes: Int { type.slotBytes(kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim) }

    /// Appends slot s exactly as stored (no rounding: a restored slot has the same bits), per
    /// head g: keys (dk elements), values (dv elements), then for q8 the key and value scales.
    package func append(slot s: Int, to out: inout [UInt8]) {
        let e = type.elementBytes
        for g in 0..<kvHeads {
            let i = index(g, s)
            out.append(contentsOf: UnsafeRawBufferPointer(start: keys + i * keyDim * e, count: keyDim * e))
            out.append(contentsOf: UnsafeRawBufferPointer(start: values + i * valueDim * e, count: valueDim * e))
            if type == .q8 {
                withUnsafeBytes(of: keyScales[i].bitPattern.littleEndian) { out.append(contentsOf: $0) }
                withUnsafeBytes(of: valueScales[i].bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        }
    }

    /// Sets slot s from `storedSlotBytes` bytes written by `append(slot:to:)`.
    package func set(slot s: Int, from src: UnsafeRawPointer) {
        let e = type.elementBytes
        var offset = 0
        for g in 0..<kvHeads {
            let i = index(g, s)
            (keys + i * keyDim * e).copyMemory(from: src + offset, byteCount: keyDim * e)
            offset += keyDim * e
            (values + i * valueDim * e).copyMemory(from: src + offset, byteCount: valueDim * e)
            offset += valueDim * e
            if type == .q8 {
                keyScales[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                valueScales[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
                offset += 8
            }
        }
    }
}
