import Foundation
import HymbaFormat

/// Settings of one conversion.
public struct ConversionOptions: Sendable {
    public var recipe = QuantizationRecipe(matrixType: .q8)
    public var writer = HymbaFileWriter.Options()
    /// Drop each source tensor's pages (resident set and page cache) once it is written, so a
    /// conversion's memory is one tensor, not the checkpoint. Off only to check that it changes
    /// no output byte.
    public var releaseSourcePages = true
    public init() {}
}

/// Hugging Face checkpoint → `.hymba`.
public enum Converter {
    /// Checks the output path (`OutputTarget`: not an input, in a writable directory) and the
    /// checkpoint against its config, then writes `output`. `tokenizer` is the tokenizer's
    /// metadata object (nil: the file carries no tokenizer). Nothing is left at `output`
    /// unless the whole conversion succeeds; an existing file there is replaced atomically.
    public static func convert(
        checkpoint: Checkpoint, output: String, tokenizer: [String: Any]?, options: ConversionOptions,
        extraTensors: [TensorSource] = [], extraMetadata: [String: Any] = [:], progress: ProgressReporter? = nil
    ) throws -> ConversionReport {
        let target = try OutputTarget(path: output, inputs: checkpoint.inputFilePaths)
        try checkpoint.validateTensors()
        let config = checkpoint.config
        try ModelMetadata.checkTokenizer(tokenizer, fits: config, source: checkpoint.directory + "/tokenizer.json")
        var jobs: [(TensorSource, StorageType)] = []
        let releaseSource = options.releaseSourcePages
        for (name, shape) in config.expectedTensors {
            let data = try checkpoint.tensor(name)
            let rowLength = shape.last!
            var release: (@Sendable () -> Void)? = nil
            if releaseSource { release = { checkpoint.releasePages(of: name) } }
            let source = TensorSource(name: name, shape: shape, sourceBytesPerElement: data.type.rowBytes(length: 1), fill: { rows, dst in
                for (i, r) in rows.enumerated() { data.decodeRow(r, into: dst + i * rowLength) }
            }, release: release)
            jobs.append((source, options.recipe.type(for: name)))
        }
        // Derived tensors (e.g. the meta-token prefix) are exact f32.
        jobs += extraTensors.map { ($0, StorageType.f32) }
        let files = try checkpoint.sourceFiles()
        let provenance: [String: Any] = [
            "converter": "hymba-convert \(HymbaVersion.string)",
            "source": "checkpoint",
            "files": files.map { ["name": $0.name, "bytes": $0.bytes, "sha256": $0.sha256] },
        ]
        var metadata = ModelMetadata.make(config: checkpoint.configJSON, tokenizer: tokenizer, recipe: options.recipe,
                                          writer: options.writer, provenance: provenance)
        metadata.merge(extraMetadata) { _, new in new }
        return try ModelWriter.write(output: target, metadata: metadata, tensors: jobs, options: options.writer, progress: progress)
    }
}

/// The metadata object of a `.hymba` file (schema in `formats/HYMBA-FORMAT.md`, "Metadata").
public enum ModelMetadata {
    /// A tokenizer whose ids pass the model's vocabulary would give files that cannot run
    /// (token ids outside the embedding table): refused at conversion.
    public static func checkTokenizer(_ tokenizer: [String: Any]?, fits config: HymbaConfig, source: String) throws {
        guard let vocab = tokenizer?["vocab"] as? [Any], vocab.count > config.vocabSize else { return }
        throw ConversionError("\(source): the tokenizer has \(vocab.count) tokens but config.json's vocab_size is \(config.vocabSize) (ids would fall outside the embedding table)")
    }

    public static func make(config: [String: Any], tokenizer: [String: Any]?, recipe: QuantizationRecipe,
                            writer: HymbaFileWriter.Options, provenance: [String: Any]) -> [String: Any] {
        var quant = recipe.jsonObject
        quant["codec"] = writer.codec.description
        quant["level"] = Int(writer.level)
        quant["chunk_bytes"] = writer.chunkBytes
        return [
            "format": "hymba-edge",
            "config": config,
            "tokenizer": tokenizer ?? NSNull(),
            "quantization": quant,
            "provenance": provenance,
        ]
    }
}

extension TensorSource {
    /// A source over values already in memory (row-major, `shape`).
    public static func inMemory(name: String, shape: [Int], values: [Float]) -> TensorSource {
        let rowLength = shape.last ?? 1
        return TensorSource(name: name, shape: shape, sourceBytesPerElement: 4) { rows, dst in
            values.withUnsafeBufferPointer { v in
                dst.update(from: v.baseAddress! + rows.lowerBound * rowLength, count: rows.count * rowLength)
            }
        }
    }
}

/// A conversion was refused; the message names the file, tensor and problem.
public struct ConversionError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
