extension HymbaFile {
    /// Tensors named with this prefix are derived from the weights (the stored meta-token
    /// prefix, `hymba.meta_prefix.*`), not weights: they count in no weight total.
    public static let derivedTensorPrefix = "hymba."

    /// Whether `name` is one of the model's weights (not a derived `hymba.*` tensor).
    public static func isWeight(_ name: String) -> Bool { !name.hasPrefix(derivedTensorPrefix) }

    /// Weights, encoded bytes and stored bytes of the weight tensors of one storage type.
    public struct StorageTotals: Sendable {
        public var type: StorageType
        public var tensors = 0
        public var elements = 0
        /// Bytes of the encoded rows (`row_bytes × rows`), before chunk compression.
        public var encodedBytes = 0
        /// Bytes the chunks take in the file (after compression, without padding).
        public var storedBytes = 0
        /// Bits per weight (formats/HYMBA-FORMAT.md, "Bits per weight"): 8 × encoded bytes /
        /// weights. A property of the storage types, not of the codec.
        public var bitsPerWeight: Double { Double(encodedBytes) * 8 / Double(max(1, elements)) }
    }

    /// Totals per storage type over the weight tensors, in `StorageType` order.
    public var storageTotals: [StorageTotals] {
        var byType: [StorageType: StorageTotals] = [:]
        for t in tensors where Self.isWeight(t.name) {
            var e = byType[t.type] ?? StorageTotals(type: t.type)
            e.tensors += 1
            e.elements += t.elementCount
            e.encodedBytes += Int(t.rawLength)
            e.storedBytes += Int(t.storedBytes)
            byType[t.type] = e
        }
        return StorageType.allCases.compactMap { byType[$0] }
    }

    /// All weight tensors together (`type` is the one holding the most encoded bytes).
    public var weightTotals: StorageTotals {
        let all = storageTotals
        var total = StorageTotals(type: all.max { $0.encodedBytes < $1.encodedBytes }?.type ?? .f32)
        for t in all {
            total.tensors += t.tensors
            total.elements += t.elements
            total.encodedBytes += t.encodedBytes
            total.storedBytes += t.storedBytes
        }
        return total
    }

    /// The model's bits per weight: 8 × encoded bytes of every weight tensor / number of
    /// weights (formats/HYMBA-FORMAT.md, "Bits per weight"). The figure `hymba-convert`,
    /// `inspect`, `hymba-edge info` and `bench`, and `formats/read_hymba.py` all print.
    public var bitsPerWeight: Double { weightTotals.bitsPerWeight }
}
