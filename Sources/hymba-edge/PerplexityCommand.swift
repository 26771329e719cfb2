import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge perplexity`: how well a model predicts a text file.
struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Score a text file in windows of --ctx tokens; ends with the lines mean_nll: X and perplexity: Y.")

    @OptionGroup var model: ModelOptions

    @Option(name: [.customShort("f"), .long], help: "The text file (UTF-8; - for stdin), tokenized once with BOS first.")
    var file: String

    func run() throws {
        try runReportingErrors {
            let data = try FileArgument.read(file, what: "the text")
            let text = try UTF8Text.decode(data, source: FileArgument.name(self.file))
            let file = try HymbaFile(path: model.model, verifyChecksums: !model.noVerify)
            let window = model.ctx ?? file.config.maxPositionEmbeddings
            guard window >= 2, window <= file.config.maxPositionEmbeddings else {
                throw ValidationError("--ctx \(window): the window must be in 2…\(file.config.maxPositionEmbeddings) (max_position_embeddings)")
            }
            var options = try model.sessionOptions()
            options.contextLength = window
            let tm = try TextModel(file: file, options: options, workload: .perplexity)
            let tokens = tm.encode(text)
            let session = try HymbaSession(model: tm.model, options: tm.sessionOptions)
            let windows = (tokens.count + window - 1) / window
            print("tokens: \(tokens.count) (BOS first), window: \(window), windows: \(windows)")
            let bar = ProgressBar(title: "scoring")
            let start = Date()
            let r = try Perplexity.evaluate(tokens: tokens, session: session, window: window) { done, total in
                bar.update(done: done, total: total)
            }
            bar.finish()
            let seconds = Date().timeIntervalSince(start)
            print("predictions: \(r.predictions) in \(String(format: "%.2f", seconds)) s (\(Format.rate(Double(tokens.count) / seconds)))")
            print(String(format: "mean_nll: %.6f", r.meanNLL))
            print(String(format: "perplexity: %.4f", r.perplexity))
            writeErr((Format.memory(tm.memoryPlan) + ["peak RSS: \(Format.peakRSS)"]).joined(separator: " | ") + "\n")
        }
    }
}

/// A progress bar on stderr: redrawn in place on a terminal, a line every 10% otherwise.
final class ProgressBar {
    private let title: String
    private let isTerminal = isatty(2) != 0
    private var lastDecile = -1
    private var drawn = false

    init(title: String) { self.title = title }

    func update(done: Int, total: Int) {
        let frac = total > 0 ? min(1, Double(done) / Double(total)) : 1
        if isTerminal {
            let width = 30, filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            writeErr("\r\(title) [\(bar)] \(String(format: "%3d%%", Int(frac * 100))) \(done)/\(total) tokens")
            drawn = true
        } else {
            let decile = Int(frac * 10)
            if decile > lastDecile {
                lastDecile = decile
                writeErr("\(title): \(decile * 10)% (\(done)/\(total) tokens)\n")
            }
        }
    }

    func finish() { if isTerminal && drawn { writeErr("\n") } }
}
