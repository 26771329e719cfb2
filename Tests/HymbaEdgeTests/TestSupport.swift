import Foundation
import HymbaConverter
import HymbaFormat
import HymbaRuntime
import HymbaTestSupport
import Testing

/// Fixture paths (found relative to this file, never /work/shared) and the tiny-code-hymba
/// model converted once per test process into a temporary directory.
enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let repositoryRoot: URL = root.deletingLastPathComponent().deletingLastPathComponent()
    static var tinyCode: String { root.appendingPathComponent("tiny-code-hymba").path }
    static func tinyCode(_ file: String) -> String { tinyCode + "/" + file }

    static let temporaryDirectory = ScratchDirectory.make("edge")

    private static let lock = NSLock()
    nonisolated(unsafe) private static var converted: [StorageType: String] = [:]
    nonisolated(unsafe) private static var models: [StorageType: TextModel] = [:]

    /// tiny-code-hymba converted with `--quant type` (zstd), as hymba-convert does it.
    static func codeModelFile(_ type: StorageType) throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let p = converted[type] { return p }
        let out = temporaryDirectory + "/tiny-code-\(type).hymba"
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: type)
        _ = try Converter.convert(checkpoint: try Checkpoint(directory: tinyCode), output: out,
                                  tokenizer: try TokenizerImport.metadataObject(directory: tinyCode), options: options)
        converted[type] = out
        return out
    }

    /// tiny-code-hymba with GGML's Q4_0 (`Q4_0Reference`, row by row) applied to the tensors
    /// `--quant q4` quantizes, stored as f32: the yardstick the q4 model is held to. Written
    /// as a checkpoint (the other files copied) and converted like the others.
    static func q4_0ModelFile() throws -> String {
        lock.lock()
        if let p = q4_0Path { lock.unlock(); return p }
        lock.unlock()
        let dir = temporaryDirectory + "/tiny-code-q4_0"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: tinyCode) where name.hasSuffix(".json") && name != "eval.json" {
            try fm.copyItem(atPath: tinyCode(name), toPath: dir + "/" + name)
        }
        let source = try SafetensorsFile(path: tinyCode("model.safetensors"))
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for e in source.entries {
            var values = try source.floats(e.name)
            if QuantizationRecipe.isLargeMatrix(e.name), let row = e.shape.last, row > 0 {
                let original = values
                original.withUnsafeBufferPointer { x in
                    values.withUnsafeMutableBufferPointer { out in
                        for start in stride(from: 0, to: x.count, by: row) {
                            Q4_0Reference.roundTrip(UnsafeBufferPointer(rebasing: x[start..<(start + row)]),
                                                    into: UnsafeMutableBufferPointer(rebasing: out[start..<(start + row)]))
                        }
                    }
                }
            }
            tensors.append((e.name, e.shape, values))
        }
        try writeSafetensors(tensors, to: dir + "/model.safetensors")
        let out = temporaryDirectory + "/tiny-code-q4_0-f32.hymba"
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: .f32)
        _ = try Converter.convert(checkpoint: try Checkpoint(directory: dir), output: out,
                                  tokenizer: try TokenizerImport.metadataObject(directory: dir), options: options)
        lock.lock(); q4_0Path = out; lock.unlock()
        return out
    }
    nonisolated(unsafe) private static var q4_0Path: String?

    /// A minimal safetensors writer (F32 tensors): the 8-byte header length, the JSON header
    /// padded with spaces to 8 bytes, the data.
    static func writeSafetensors(_ tensors: [(name: String, shape: [Int], values: [Float])], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for t in tensors {
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// The opened model of `codeModelFile(type)`, shared by the tests.
    static func codeModel(_ type: StorageType) throws -> TextModel {
        let path = try codeModelFile(type)
        lock.lock(); defer { lock.unlock() }
        if let m = models[type] { return m }
        let m = try TextModel.open(path: path)
        models[type] = m
        return m
    }

    /// The fixture's expected outputs from NVIDIA's code.
    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: tinyCode("expected.safetensors"))
    }
}
