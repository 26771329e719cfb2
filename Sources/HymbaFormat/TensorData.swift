/// The encoded bytes of one tensor, ready for the kernels: rows of `rowBytes` bytes in the
/// tensor's storage type, reachable through one or more contiguous segments (a tensor stored
/// in several chunks may have some chunks in place in the file mapping and others
/// decompressed into owned memory). The memory is owned by whoever produced the view
/// (a `HymbaFile` or a `SafetensorsFile`) and lives as long as it does.
public struct TensorData: @unchecked Sendable {
    /// A run of consecutive whole rows stored contiguously.
    public struct Segment: @unchecked Sendable {
        public var firstRow: Int
        public var rowCount: Int
        public var base: UnsafeRawPointer
        public init(firstRow: Int, rowCount: Int, base: UnsafeRawPointer) {
            self.firstRow = firstRow
            self.rowCount = rowCount
            self.base = base
        }
    }

    public let name: String
    public let type: StorageType
    /// Outermost dimension first, as in the checkpoint (`[out, in]` for matrices).
    public let shape: [Int]
    /// Elements per row: the last dimension.
    public let rowLength: Int
    /// Number of rows: the product of the other dimensions (1 for 1-D tensors).
    public let rows: Int
    /// Encoded bytes per row (`type.rowBytes(length: rowLength)`).
    public let rowBytes: Int
    /// Segments in row order, covering rows `0..<rows` without gaps.
    public let segments: [Segment]

    public init(name: String, type: StorageType, shape: [Int], segments: [Segment]) {
        self.name = name
        self.type = type
        self.shape = shape
        self.rowLength = shape.last ?? 1
        self.rows = shape.dropLast().reduce(1, *)
        self.rowBytes = type.rowBytes(length: rowLength)
        self.segments = segments
    }

    /// Start of row `r` (0 ≤ r < rows). Inlinable: the kernels (other modules) ask for rows
    /// in their inner loops, where a call and the segments array's retain showed in profiles.
    @inlinable @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer {
        if segments.count == 1 { return segments[0].base + r * rowBytes }
        // Few segments (one per compressed chunk at most): a linear scan is fine.
        for s in segments where r < s.firstRow + s.rowCount {
            return s.base + (r - s.firstRow) * rowBytes
        }
        preconditionFailure("row \(r) outside tensor \(name) with \(rows) rows")
    }

    /// Total element count.
    public var elementCount: Int { rows * rowLength }

    /// Decodes row `r` into `out` (which holds at least `rowLength` floats).
    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        StorageCodec.decodeRow(type: type, row(r), length: rowLength, into: out)
    }

    /// Decodes the whole tensor to floats (tests, tools and small tensors only).
    public func decodeAll() -> [Float] {
        var out = [Float](repeating: 0, count: elementCount)
        out.withUnsafeMutableBufferPointer { buf in
            for r in 0..<rows { decodeRow(r, into: buf.baseAddress! + r * rowLength) }
        }
        return out
    }
}
