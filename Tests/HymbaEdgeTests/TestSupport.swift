import Foundation
import HymbaConverter
import HymbaFormat
import HymbaRuntime
import Testing

/// Fixture paths (found relative to this file, never /work/shared) and the tiny-code-hymba
/// model converted once per test process into a temporary directory.
enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let repositoryRoot: URL = root.deletingLastPathComponent().deletingLastPathComponent()
    static var tinyCode: String { root.appendingPathComponent("tiny-code-hymba").path }
    static func tinyCode(_ file: String) -> String { tinyCode + "/" + file }

    static let temporaryDirectory: String = {
        let dir = NSTemporaryDirectory() + "hymba-edge-tests-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

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
