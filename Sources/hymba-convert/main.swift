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

    @Option(name: .long, help: "zstd compression level (1-19, default 3).")
    var level: Int32?

    @Option(name: .long, parsing: .singleValue, help: "Per-tensor override PATTERN=TYPE (glob over tensor names; repeatable).")
    var keep: [String] = []

    func conversionOptions() throws -> ConversionOptions {
        var o = ConversionOptions()
        guard let t = StorageType(name: quant) else { throw ValidationError("--quant \(quant): expected q4, q8, bf16, f16 or f32") }
        guard let c = ChunkCodec(name: codec) else { throw ValidationError("--codec \(codec): expected zstd, lz4 or none") }
        if let level, !(1...19).contains(level) { throw ValidationError("--level \(level): expected 1...19") }
        o.recipe = QuantizationRecipe(matrixType: t, overrides: try keep.map(QuantizationRecipe.parseOverride))
        o.writer.codec = c
        o.writer.level = level ?? 3
        return o
    }

    /// Options that are accepted but have no effect on this model: printed as warnings.
    func warnings(options: ConversionOptions, tensorNames: [String]) -> [String] {
        var out: [String] = []
        if let level, options.writer.codec != .zstd {
            out.append("--level \(level) has no effect with --codec \(options.writer.codec) (it sets the zstd level)")
        }
        for o in options.recipe.unmatchedOverrides(among: tensorNames) {
            out.append("--keep \(o.pattern)=\(o.type) matches no tensor of this model")
        }
        return out
    }
}

/// Prints one "warning: ..." line per entry on stderr.
func printWarnings(_ warnings: [String]) {
    for w in warnings { FileHandle.standardError.write("warning: \(w)\n".data(using: .utf8)!) }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint directory (config.json, safetensors, tokenizer files) to a .hymba file.")

    @Argument(help: "Hugging Face checkpoint directory.")
    var checkpoint: String

    @Option(name: .shortAndLong, help: "Output .hymba file (- for stdout).")
    var output: String

    @OptionGroup var encoding: EncodingOptions

    @Flag(name: .customLong("no-tokenizer"),
          help: "Convert without a tokenizer (the checkpoint has none, or it is not wanted): the file then cannot turn text into tokens.")
    var noTokenizer = false

    @Flag(name: .customLong("precompute-prefix"),
          help: "Store the meta-token prefix (every layer's K/V and SSM state after the meta tokens) so loading skips computing it.")
    var precomputePrefix = false

    func run() throws {
        TemporaryFiles.installSignalCleanup()
        try runReportingErrors {
            let options = try encoding.conversionOptions()
            let ckpt = try Checkpoint(directory: checkpoint)
            printWarnings(encoding.warnings(options: options, tensorNames: ckpt.config.expectedTensors.map(\.name)))
            let tokenizer = noTokenizer ? nil : try TokenizerImport.requiredMetadataObject(directory: checkpoint)
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
            let replaced = report.replacedBytes
            report = try Converter.convert(checkpoint: ckpt, output: output, tokenizer: tokenizer, options: options,
                                           extraTensors: extras, extraMetadata: meta, progress: ProgressReporter(title: "adding prefix"))
            report.replacedBytes = replaced
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
            let tok = try tokenizer.map { try TokenizerImport.requiredMetadataObject(directory: $0) }
            let names = (try? HymbaConfig(jsonData: Data(contentsOf: URL(fileURLWithPath: config))))?.expectedTensors.map(\.name)
            if let names { printWarnings(encoding.warnings(options: options, tensorNames: names)) }
            let tokenizerFiles = tokenizer.map { dir in Checkpoint.tokenizerFileNames.map { dir + "/" + $0 } } ?? []
            let summary = try FileArgument.writing(to: self.output) { output in
                try Synthesizer.synthesize(configPath: config, output: output, seed: seed, tokenizer: tok, options: options,
                                           tokenizerFiles: tokenizerFiles, progress: ProgressReporter(title: "synthesizing"))
                    .summary.replacingOccurrences(of: output, with: FileArgument.outputName(self.output))
            }
            if output == FileArgument.standardStream { writeError(summary + "\n") } else { print(summary) }
        }
    }
}

await CommandLineEntry.main(HymbaConvert.self, pathCommand: true)
