import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on stderr: redrawn in place on a terminal, plain lines (every 10%)
/// otherwise, so logs stay readable.
public final class ProgressReporter: @unchecked Sendable {
    private let title: String
    private let isTerminal: Bool
    private var total = 1
    private var lastDecile = -1
    private let started = Date()

    public init(title: String) {
        self.title = title
        isTerminal = isatty(2) != 0
    }

    func start(total: Int) { self.total = max(1, total) }

    func update(done: Int, label: String) {
        let frac = min(1, Double(done) / Double(total))
        if isTerminal {
            let width = 30
            let filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let shown = label.count > 44 ? "…" + label.suffix(43) : label
            let pad = String(repeating: " ", count: max(0, 44 - shown.count))
            write("\r\(title) [\(bar)] \(String(format: "%3d%%", Int(frac * 100))) \(shown)\(pad)")
        } else {
            let decile = Int(frac * 10)
            if decile > lastDecile {
                lastDecile = decile
                write("\(title): \(decile * 10)% (\(label))\n")
            }
        }
    }

    func finish() {
        let secs = Date().timeIntervalSince(started)
        if isTerminal { write("\r\(title) done in \(String(format: "%.1f", secs)) s" + String(repeating: " ", count: 70) + "\n") }
    }

    private func write(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8)!) }
}
