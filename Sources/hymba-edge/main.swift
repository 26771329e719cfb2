import ArgumentParser
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge`: runs Hymba models from `.hymba` files. A thin shell over HymbaRuntime.
struct HymbaEdge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hymba-edge",
        abstract: "Run NVIDIA Hymba models on the CPU from .hymba files.",
        version: HymbaVersion.string,
        subcommands: [Run.self, Chat.self, Tokenize.self, Detokenize.self, PerplexityCommand.self, Eval.self, Info.self, Bench.self])
}

/// Options that choose how a model is opened and how a session is sized.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The .hymba model file.")
    var model: String

    @Option(name: .long, help: "Context length in tokens (default: the model's max_position_embeddings).")
    var ctx: Int?

    @Option(name: .customLong("kv-type"), help: "Element type of the KV cache: f16 or f32.")
    var kvType: String = "f16"

    @Flag(name: .customLong("no-verify"), help: "Skip the per-chunk checksum check on first use.")
    var noVerify = false

    func open() throws -> (HymbaFile, HymbaModel) {
        let file = try HymbaFile(path: model, verifyChecksums: !noVerify)
        return (file, try HymbaModel(file: file))
    }

    func sessionOptions() throws -> HymbaOptions {
        guard let kv = KVType(rawValue: kvType) else { throw ValidationError("--kv-type \(kvType): expected f16 or f32") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx \(ctx): must be at least 1") }
        return HymbaOptions(contextLength: ctx, kvType: kv)
    }
}

/// Prints a library error as one clear line on stderr and exits with status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}

HymbaEdge.main()
