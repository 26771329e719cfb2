/// One activation row arranged for the products of one weight type, in a buffer owned by the
/// caller and reused across calls; room for rows of up to `capacity` elements.
///
/// The arrangement inside belongs to the backend that multiplies it: the portable kernels'
/// float orders and int8 runs (`PortableInput`), the AVX-512 kernels' packed integer codes
/// (`PackedInput`). Callers ask the backend for the size (`KernelTable.vectorInputFloats`) and
/// to fill it (`KernelTable.arrangeVector`); only one weight type's arrangement is held at a
/// time, so a backend may lay out every type from the start of the buffer.
public struct ArrangedInput {
    /// The buffer (`KernelTable.vectorInputFloats(capacity)` floats; loads from it are unaligned).
    public let storage: UnsafeMutablePointer<Float>
    public let capacity: Int

    @inlinable
    public init(storage: UnsafeMutablePointer<Float>, capacity: Int) {
        self.storage = storage
        self.capacity = capacity
    }
}

/// The packed integer arrangement of the x86-64 backends' q4 and q8 products (`IntegerMatVec`
/// on AVX-512, `Q4MatVecAVX2`/`Q8MatVecAVX2` on AVX2: the same layout and rounding), from the
/// start of the buffer: the codes (room for 2 bytes per element, whole groups of 512), then
/// per-block scales and per-sub-block sums.
extension ArrangedInput {
    @inlinable public static func packedFloats(capacity: Int) -> Int { (capacity + 511) / 512 * (256 + 16 + 16) }

    @inlinable public var packedGroups: Int { (capacity + 511) / 512 }
    @inlinable public var packed: UnsafeMutableRawPointer { UnsafeMutableRawPointer(storage) }
    @inlinable public var packedScales: UnsafeMutablePointer<Float> { storage + 256 * packedGroups }
    @inlinable public var packedSums: UnsafeMutablePointer<Float> { packedScales + 16 * packedGroups }
}
