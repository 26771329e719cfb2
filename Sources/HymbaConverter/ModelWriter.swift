import Foundation
import HymbaFormat

/// Where the float values of one tensor come from: a checkpoint tensor or a generator.
/// `fill` writes rows `rows` (row-major, `rows.count × shape.last` floats) into `dst`;
/// it is called concurrently for disjoint row ranges.
public struct TensorSource: @unchecked Sendable {
    public var name: String
    public var shape: [Int]
    /// Bytes per element in the source (for the "size in" statistic).
    public var sourceBytesPerElement: Int
    public var fill: @Sendable (_ rows: Range<Int>, _ dst: UnsafeMutablePointer<Float>) throws -> Void
    /// Called once the tensor is written: lets a mapped source drop the pages it was read
    /// from, so that a conversion keeps one tensor's source resident, not the whole checkpoint.
    public var release: (@Sendable () -> Void)?

    public init(name: String, shape: [Int], sourceBytesPerElement: Int,
                fill: @escaping @Sendable (_ rows: Range<Int>, _ dst: UnsafeMutablePointer<Float>) throws -> Void,
                release: (@Sendable () -> Void)? = nil) {
        self.name = name
        self.shape = shape
        self.sourceBytesPerElement = sourceBytesPerElement
        self.fill = fill
        self.release = release
    }
}

/// What a conversion produced, for the summary.
public struct ConversionReport: Sendable {
    public struct TypeStats: Sendable {
        public var tensors = 0
        public var elements = 0
        public var rawBytes = 0
        public var storedBytes = 0
        public var squaredError = 0.0
        public var squaredSource = 0.0
        /// Root-mean-square error of the stored values against the source values.
        public var rmse: Double { elements > 0 ? (squaredError / Double(elements)).squareRoot() : 0 }
        /// RMSE relative to the source's root-mean-square value.
        public var relativeRMSE: Double { squaredSource > 0 ? (squaredError / squaredSource).squareRoot() : 0 }
    }

    public var outputPath: String
    /// Size of the file the output replaced (nil: there was none).
    public var replacedBytes: Int?
    public var sourceBytes = 0
    public var fileBytes = 0
    /// Weights: elements of every tensor but the derived `hymba.*` ones.
    public var parameters = 0
    /// Encoded bytes of the weight tensors (derived ones excluded).
    public var weightEncodedBytes = 0
    /// Encoded bytes before compression, and after.
    public var rawBytes = 0
    public var storedBytes = 0
    public var byType: [StorageType: TypeStats] = [:]
    public var seconds = 0.0

    /// Bits per weight (formats/HYMBA-FORMAT.md, "Bits per weight"): 8 × encoded bytes of the
    /// weight tensors / weights; `inspect` prints the same figure for the file.
    public var bitsPerWeight: Double { parameters > 0 ? Double(weightEncodedBytes) * 8 / Double(parameters) : 0 }
    public var compressionRatio: Double { storedBytes > 0 ? Double(rawBytes) / Double(storedBytes) : 1 }

    public var summary: String {
        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
        var lines = [
            "wrote \(outputPath)" + (replacedBytes.map { " (replaced the existing file of \($0) bytes)" } ?? ""),
            "  size in:      \(mib(sourceBytes)) (\(sourceBytes) bytes of source tensors)",
            "  size out:     \(mib(fileBytes)) (\(fileBytes) bytes)",
            "  parameters:   \(parameters)",
            String(format: "  bits/weight:  %.3f (encoded weights, before compression)", bitsPerWeight),
            String(format: "  compression:  %.3f× (encoded %@ -> stored %@)", compressionRatio, mib(rawBytes), mib(storedBytes)),
        ]
        for t in StorageType.allCases {
            guard let s = byType[t] else { continue }
            lines.append("  " + t.description.padded(to: 5) + String(format: " %4d tensors %12d weights  %@  RMSE %.3e (relative %.3e)",
                                s.tensors, s.elements, mib(s.storedBytes), s.rmse, s.relativeRMSE))
        }
        lines.append(String(format: "  time:         %.1f s", seconds))
        return lines.joined(separator: "\n")
    }
}

/// Encodes tensor sources into a `.hymba` file with the chosen storage types, checking every
/// value is finite and measuring the error of each storage type against the source.
public enum ModelWriter {
    /// Writes `output` (checked beforehand by `OutputTarget`), calling each source's `release`
    /// once its tensor is written.
    public static func write(
        output: OutputTarget, metadata: [String: Any], tensors: [(source: TensorSource, type: StorageType)],
        options: HymbaFileWriter.Options, progress: ProgressReporter? = nil
    ) throws -> ConversionReport {
        let start = Date()
        let path = output.path
        // Raw U+FEFF in strings is written escaped: Foundation's parser would drop it.
        let metaData = TokenizerSpec.escapingByteOrderMarks(
            in: try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys, .withoutEscapingSlashes]))
        let writer = try HymbaFileWriter(path: path, metadata: metaData, options: options)
        var report = ConversionReport(outputPath: path)
        report.replacedBytes = output.replacedBytes
        let totalElements = tensors.reduce(0) { $0 + $1.source.shape.reduce(1, *) }
        var doneElements = 0
        progress?.start(total: totalElements)
        for (source, type) in tensors {
            let stats = ErrorAccumulator()
            let rowLength = source.shape.last!
            let rowBytes = type.rowBytes(length: rowLength)
            let fill = source.fill
            let name = source.name
            try writer.addTensor(name: name, type: type, shape: source.shape) { rows, dst in
                let n = rows.count * rowLength
                let values = UnsafeMutablePointer<Float>.allocate(capacity: n)
                let check = UnsafeMutablePointer<Float>.allocate(capacity: rowLength)
                defer { values.deallocate(); check.deallocate() }
                try fill(rows, values)
                var sqErr = 0.0, sqSrc = 0.0
                for (i, r) in rows.enumerated() {
                    let row = values + i * rowLength
                    for j in 0..<rowLength where !row[j].isFinite {
                        throw ConversionError("tensor \(name): element [\(r), \(j)] is \(row[j]) (non-finite weights are refused)")
                    }
                    let out = dst + i * rowBytes
                    StorageCodec.encodeRow(type: type, row, length: rowLength, into: out)
                    if type != .f32 {
                        StorageCodec.decodeRow(type: type, UnsafeRawPointer(out), length: rowLength, into: check)
                        // A finite weight too large for the type (f16 above 65504, a q8/q4
                        // scale that overflows f16) would decode to ±Inf or NaN.
                        for j in 0..<rowLength where !check[j].isFinite {
                            // The culprit is the row's largest value (a block scale overflows).
                            let big = (0..<rowLength).max { abs(row[$0]) < abs(row[$1]) }!
                            throw ConversionError("tensor \(name): element [\(r), \(big)] = \(row[big]) is too large for \(type) (element [\(r), \(j)] would read back as \(check[j])); keep this tensor in f32 or bf16 with --keep")
                        }
                        for j in 0..<rowLength {
                            let e = Double(check[j] - row[j])
                            sqErr += e * e
                            sqSrc += Double(row[j]) * Double(row[j])
                        }
                    }
                }
                stats.add(sqErr, sqSrc)
            }
            source.release?()
            let entry = writer.tensorEntries.last!
            let elements = source.shape.reduce(1, *)
            var s = report.byType[type] ?? .init()
            s.tensors += 1
            s.elements += elements
            s.rawBytes += Int(entry.rawLength)
            s.storedBytes += Int(entry.storedBytes)
            s.squaredError += stats.squaredError
            s.squaredSource += stats.squaredSource
            report.byType[type] = s
            // Derived tensors (`hymba.*`, e.g. the meta-token prefix) are not model parameters.
            if HymbaFile.isWeight(name) {
                report.parameters += elements
                report.weightEncodedBytes += Int(entry.rawLength)
            }
            report.rawBytes += Int(entry.rawLength)
            report.storedBytes += Int(entry.storedBytes)
            report.sourceBytes += elements * source.sourceBytesPerElement
            doneElements += elements
            progress?.update(done: doneElements, label: name)
        }
        try writer.finish()
        progress?.finish()
        report.fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        report.seconds = Date().timeIntervalSince(start)
        return report
    }
}

final class ErrorAccumulator: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var squaredError = 0.0
    private(set) var squaredSource = 0.0
    func add(_ e: Double, _ s: Double) {
        lock.lock()
        squaredError += e
        squaredSource += s
        lock.unlock()
    }
}
