import Foundation

/// stdout for text streamed token by token, aware of a reader that went away: `run | head`
/// closes the pipe after ten lines, and generating on would only waste the CPU.
///
/// SIGPIPE is ignored (`CommandLineEntry`), so a write to a closed pipe fails with EPIPE
/// instead of killing the process; the first such failure sets `closed`, and the generation
/// callbacks stop on it.
enum StandardOutput {
    nonisolated(unsafe) private(set) static var closed = false

    /// Writes `s` and flushes it (the text streams); false once stdout is closed.
    @discardableResult
    static func write(_ s: String) -> Bool {
        guard !closed else { return false }
        guard !s.isEmpty else { return true }
        if fputs(s, stdout) < 0 || fflush(stdout) != 0 {
            closed = true
            clearerr(stdout)
        }
        return !closed
    }
}

/// Writes to stdout right away (the text streams token by token).
func writeOut(_ s: String) { StandardOutput.write(s) }
