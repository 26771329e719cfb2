extension HymbaFile {
    /// Tensors, weights and stored bytes of one storage type.
    public struct StorageTotals: Sendable {
        public var type: StorageType
        public var tensors = 0
        public var elements = 0
        public var storedBytes = 0
        public var bitsPerWeight: Double { Double(storedBytes) * 8 / Double(max(1, elements)) }
    }

    /// Totals per storage type present in the file, in `StorageType` order.
    public var storageTotals: [StorageTotals] {
        var byType: [StorageType: StorageTotals] = [:]
        for t in tensors {
            var e = byType[t.type] ?? StorageTotals(type: t.type)
            e.tensors += 1
            e.elements += t.elementCount
            e.storedBytes += Int(t.storedBytes)
            byType[t.type] = e
        }
        return StorageType.allCases.compactMap { byType[$0] }
    }
}
