import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge eval`: run token ids through the model and write every position's logits.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run token ids and write the logits of every position as raw little-endian fp32 [n, vocab].")

    @OptionGroup var model: ModelOptions

    @Option(name: .long, help: "Comma-separated token ids, e.g. 1,523,887.")
    var ids: String

    @Option(name: .long, help: "full (one prefill), incremental (one token at a time) or chunked:N (prefill chunks of N).")
    var mode: String = "full"

    @Option(name: .shortAndLong, help: "Where to write the logits (- for stdout; default: not written). The summary goes to stderr then.")
    var output: String?

    func validate() throws {
        if let output, output != FileArgument.standardStream,
           URL(fileURLWithPath: output).resolvingSymlinksInPath() == URL(fileURLWithPath: model.model).resolvingSymlinksInPath() {
            throw ValidationError("--output \(output): that is the model file; the logits would overwrite it")
        }
    }

    func run() throws {
        try runReportingErrors {
            let tokens = try parseIDs(ids)
            let evalMode = try parseMode(mode)
            // The logits of every position are kept, and copied once more to write them.
            let rows = tokens.count * (output == nil ? 1 : 2)
            let (_, plan, m) = try model.open(workload: .logits(rows: rows))
            let session = try HymbaSession(model: m, options: plan.options)
            let logits = try session.eval(ids: tokens, mode: evalMode)
            let vocab = m.config.vocabSize
            if let output {
                let data = logits.withUnsafeBufferPointer { buf -> Data in
                    var le = Data(capacity: buf.count * 4)
                    for v in buf { withUnsafeBytes(of: v.bitPattern.littleEndian) { le.append(contentsOf: $0) } }
                    return le
                }
                try FileArgument.write(data, to: output, what: "the logits")
            }
            let last = logits[(tokens.count - 1) * vocab ..< tokens.count * vocab]
            let argmax = last.indices.max { last[$0] < last[$1] }! - (tokens.count - 1) * vocab
            // With the logits on stdout, the summary must not mix into them.
            let say: (String) -> Void = output == FileArgument.standardStream ? { writeErr($0 + "\n") } : { print($0) }
            say("n: \(tokens.count)")
            say("vocab: \(vocab)")
            say("argmax_last: \(argmax)")
            if let output { say("logits: \(FileArgument.outputName(output))") }
            if plan.budgetBytes != nil || !plan.adjustments.isEmpty {
                say(Format.memory(plan).joined(separator: " | ") + " | peak RSS: \(Format.peakRSS)")
            }
        }
    }

    func parseIDs(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !(parts.count == 1 && parts[0].isEmpty) else { throw ValidationError("--ids: no token ids given") }
        return try parts.enumerated().map { i, p in
            guard let v = Int(p) else { throw ValidationError("--ids: entry \(i) \"\(p)\" is not an integer") }
            return v
        }
    }

    func parseMode(_ text: String) throws -> EvalMode {
        switch text {
        case "full": return .full
        case "incremental": return .incremental
        default:
            if text.hasPrefix("chunked:"), let n = Int(text.dropFirst(8)), n >= 1 { return .chunked(n) }
            throw ValidationError("--mode \(text): expected full, incremental or chunked:N with N ≥ 1")
        }
    }
}
