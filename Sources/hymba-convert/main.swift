import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaConverter
import HymbaFormat
import HymbaRuntime

/// `hymba-convert`: Hugging Face Hymba checkpoint → one self-contained `.hymba` file, and
/// tools to inspect, verify and synthesize such files. A thin shell over HymbaConverter.
struct HymbaConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hymba-convert",
        abstract: "Convert Hugging Face Hymba checkpoints to .hymba model files, and inspect or verify them.",
        version: ToolVersion.text,
        subcommands: [Convert.self, Inspect.self, Verify.self, Synthesize.self],
        defaultSubcommand: Convert.self)
}

/// Options shared by `convert` and `synthesize`.
struct EncodingOptions: ParsableArguments {
    @Option(name: .long, help: "Storage type of the large matrices: q4, q8, bf16, f16 or f32.")
    var quant: String = "q8"

    @Option(name: .long, help: "Chunk compression: zstd, lz4 or none.")
    var codec: String = "zstd"

    @Option(name: .long, help: "zstd compression level (1-19).")
    var level: Int32 = 3

    @Option(name: .long, parsing: .singleValue, help: "Per-tensor override PATTERN=TYPE (glob over tensor names; repeatable).")
    var keep: [String] = []

    func conversionOptions() throws -> ConversionOptions {
        var o = ConversionOptions()
        guard let t = StorageType(name: quant) else { throw ValidationError("--quant \(quant): expected q4, q8, bf16, f16 or f32") }
        guard let c = ChunkCodec(name: codec) else { throw ValidationError("--codec \(codec): expected zstd, lz4 or none") }
        guard (1...19).contains(level) else { throw ValidationError("--level \(level): expected 1...19") }
        o.recipe = QuantizationRecipe(matrixType: t, overrides: try keep.map(QuantizationRecipe.parseOverride))
        o.writer.codec = c
        o.writer.level = level
        return o
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint directory (config.json, safetensors, tokenizer files) to a .hymba file.")

    @Argument(help: "Hugging Face checkpoint directory.")
    var checkpoint: String

    @Option(name: .shortAndLong, help: "Output .hymba file (- for stdout).")
    var output: String

    @OptionGroup var encoding: EncodingOptions

    @Flag(name: .customLong("precompute-prefix"),
          help: "Store the meta-token prefix (every layer's K/V and SSM state after the meta tokens) so loading skips computing it.")
    var precomputePrefix = false

    func run() throws {
        TemporaryFiles.installSignalCleanup()
        try runReportingErrors {
            let options = try encoding.conversionOptions()
            let ckpt = try Checkpoint(directory: checkpoint)
            let tokenizer = try TokenizerImport.metadataObject(directory: checkpoint)
            let summary = try FileArgument.writing(to: self.output) { output in
                try convert(ckpt, tokenizer, options, to: output).replacingOccurrences(of: output, with: FileArgument.outputName(self.output))
            }
            // With the model on stdout, the summary goes to stderr.
            if self.output == FileArgument.standardStream { writeError(summary + "\n") } else { print(summary) }
        }
    }

    /// Converts to `output` (with the meta-token prefix if asked); returns the summary.
    func convert(_ ckpt: Checkpoint, _ tokenizer: [String: Any]?, _ options: ConversionOptions, to output: String) throws -> String {
        var report = try Converter.convert(checkpoint: ckpt, output: output, tokenizer: tokenizer, options: options,
                                           progress: ProgressReporter(title: "converting"))
        if precomputePrefix {
            // The prefix must be what the runtime computes from the *stored* weights, so it is
            // computed from the converted file, then the (deterministic) conversion is
            // repeated with the prefix tensors added.
            let model = try HymbaModel(source: try HymbaFile(path: output))
            let config = model.config
            let extras = model.metaPrefix.storedTensors(config: config).map {
                TensorSource.inMemory(name: $0.name, shape: $0.shape, values: $0.values)
            }
            let meta: [String: Any] = ["meta_prefix": ["tensors": MetaPrefix.tensorPrefix + "*", "computed_by": "hymba-edge \(HymbaVersion.string)"]]
            report = try Converter.convert(checkpoint: ckpt, output: output, tokenizer: tokenizer, options: options,
                                           extraTensors: extras, extraMetadata: meta, progress: ProgressReporter(title: "adding prefix"))
        }
        return report.summary
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a .hymba file's header, config, tokenizer and tensor table.")

    @Argument(help: "A .hymba file.")
    var file: String

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        try runReportingErrors {
            let f = try HymbaFile(path: file, verifyChecksums: false)
            let inspection = ModelInspection(file: f)
            if json {
                let data = try JSONSerialization.data(withJSONObject: inspection.jsonObject, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(inspection.text)
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum of a .hymba file; exits non-zero and names the first bad chunk if any.")

    @Argument(help: "A .hymba file.")
    var file: String

    func run() throws {
        try runReportingErrors {
            let f = try HymbaFile(path: file, verifyChecksums: true)
            let problems = f.verify()
            let chunks = f.tensors.reduce(0) { $0 + $1.chunks.count }
            if let first = problems.first {
                throw ConversionError("\(file): \(first)" + (problems.count > 1 ? " (and \(problems.count - 1) more bad chunks)" : ""))
            }
            print("\(file): OK (header, metadata, directory and \(chunks) chunks in \(f.tensors.count) tensors verified)")
        }
    }
}

struct Synthesize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model of a given config with random weights spread like trained ones (for speed and memory work).")

    @Option(name: .long, help: "A Hymba config.json.")
    var config: String

    @Option(name: .shortAndLong, help: "Output .hymba file (- for stdout).")
    var output: String

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Tokenizer to embed: a checkpoint directory holding tokenizer.json (default: none).")
    var tokenizer: String?

    @OptionGroup var encoding: EncodingOptions

    func run() throws {
        TemporaryFiles.installSignalCleanup()
        try runReportingErrors {
            let options = try encoding.conversionOptions()
            let tok = try tokenizer.map { try TokenizerImport.metadataObject(directory: $0) } ?? nil
            let summary = try FileArgument.writing(to: self.output) { output in
                try Synthesizer.synthesize(configPath: config, output: output, seed: seed, tokenizer: tok,
                                           options: options, progress: ProgressReporter(title: "synthesizing"))
                    .summary.replacingOccurrences(of: output, with: FileArgument.outputName(self.output))
            }
            if output == FileArgument.standardStream { writeError(summary + "\n") } else { print(summary) }
        }
    }
}

CommandLineEntry.main(HymbaConvert.self, pathCommand: true)
