import Foundation
import HymbaFormat

/// `hymba-convert synthesize`: a model of any Hymba config with random weights spread like
/// trained ones, generated row by row in parallel and streamed to the file, so even the 1.5B
/// config never sits in memory whole. `tokenizerFiles` are the files `tokenizer` was read
/// from: like the config, the output may not be one of them.
public enum Synthesizer {
    public static func synthesize(
        configPath: String, output: String, seed: UInt64, tokenizer: [String: Any]?, options: ConversionOptions,
        tokenizerFiles: [String] = [], progress: ProgressReporter? = nil
    ) throws -> ConversionReport {
        let target = try OutputTarget(path: output, inputs: [configPath] + tokenizerFiles)
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ConversionError("\(configPath): cannot read the config")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConversionError("\(configPath): not a JSON object")
        }
        let config: HymbaConfig
        do { config = try HymbaConfig(json: json) } catch { throw ConversionError("\(configPath): \((error as? ConfigError)?.message ?? "\(error)")") }
        try ModelMetadata.checkTokenizer(tokenizer, fits: config, source: "the tokenizer")
        let generator = SyntheticWeights(config: config, seed: seed)
        var jobs: [(TensorSource, StorageType)] = []
        for (name, shape) in config.expectedTensors {
            let rowLength = shape.last!
            let source = TensorSource(name: name, shape: shape, sourceBytesPerElement: 2) { rows, dst in
                for (i, r) in rows.enumerated() {
                    generator.fillRow(tensor: name, shape: shape, row: r,
                                      into: UnsafeMutableBufferPointer(start: dst + i * rowLength, count: rowLength))
                }
            }
            jobs.append((source, options.recipe.type(for: name)))
        }
        var configHash = SHA256()
        configHash.update(Array(data))
        let provenance: [String: Any] = [
            "converter": "hymba-convert \(HymbaVersion.string)",
            "source": "synthetic",
            "seed": Int(truncatingIfNeeded: seed),
            "files": [["name": (configPath as NSString).lastPathComponent, "bytes": data.count, "sha256": SHA256.hex(configHash.finalize())]],
        ]
        let metadata = ModelMetadata.make(config: json, tokenizer: tokenizer, recipe: options.recipe, writer: options.writer, provenance: provenance)
        return try ModelWriter.write(output: target, metadata: metadata, tensors: jobs, options: options.writer, progress: progress)
    }
}
