import Foundation
import HymbaTestSupport
import HymbaConverter
import HymbaFormat

enum Fixtures {
    static let root: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
    }()
    static var tinyHymba: String { root + "/tiny-hymba" }
    static var tinyHymbaUntied: String { root + "/tiny-hymba-untied" }
    static var tinyCodeHymba: String { root + "/tiny-code-hymba" }
    static func config(_ size: String) -> String { root + "/configs/hymba-\(size)/config.json" }

    static func temporaryDirectory() -> String { ScratchDirectory.make("convert") }

    /// A writable copy of a fixture checkpoint (config, tokenizer files, weights).
    static func copy(_ fixture: String) throws -> String {
        let dir = temporaryDirectory() + "/ckpt"
        try FileManager.default.copyItem(atPath: fixture, toPath: dir)
        return dir
    }

    /// Converts `fixture` with the given settings into a temporary file.
    static func convert(_ fixture: String, quant: StorageType, codec: ChunkCodec = .zstd, output: String? = nil,
                        overrides: [QuantizationRecipe.Override] = []) throws -> (path: String, report: ConversionReport) {
        let out = output ?? temporaryDirectory() + "/model.hymba"
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: quant, overrides: overrides)
        options.writer.codec = codec
        let ckpt = try Checkpoint(directory: fixture)
        let report = try Converter.convert(checkpoint: ckpt, output: out,
                                           tokenizer: try TokenizerImport.metadataObject(directory: fixture), options: options)
        return (out, report)
    }
}

/// Writes a safetensors file (tests build broken checkpoints with it).
enum SafetensorsWriter {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    static func write(_ tensors: [Tensor], to path: String, headerOverride: String? = nil) {
        var offset = 0
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        for t in tensors {
            header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]]
            offset += t.bytes.count
        }
        var json = headerOverride.map { Array($0.utf8) } ?? [UInt8](try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out += json
        for t in tensors { out += t.bytes }
        _ = FileManager.default.createFile(atPath: path, contents: Data(out))
    }

    /// Every tensor of a safetensors file, as raw bytes.
    static func read(_ path: String) throws -> [Tensor] {
        let f = try SafetensorsFile(path: path)
        return f.entries.map { e in
            Tensor(name: e.name, dtype: e.dtype.rawValue, shape: e.shape,
                   bytes: Array(f.file.bytes(at: e.offset, count: e.length)))
        }
    }
}
