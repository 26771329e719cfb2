import Dispatch
import Foundation

/// Ctrl-C for `run` and `chat`. While text is generated, Ctrl-C only sets a flag that the
/// generation callback checks between tokens, so the answer stops cleanly and the stats line
/// is printed; a second Ctrl-C before it stops exits at once (status 130, as a shell reports
/// SIGINT). Outside generation (`chat` at its prompt) `idle` runs (it ends the process).
///
/// SIGINT's default action is replaced (SIG_IGN) and the signal is received through a
/// dispatch source, on another thread: the handler never runs inside the runtime's code.
/// Create it before the model is opened: starting the source starts a libdispatch thread,
/// which must not compete with the kernels' thread pool for what the system allows (with
/// `--threads 256` under an address-space limit, libdispatch would wait for it forever).
final class InterruptHandler: @unchecked Sendable {
    static let exitStatus: Int32 = 130

    private let lock = NSLock()
    private var generating = false
    private var cancelled = false
    private var source: DispatchSourceSignal?
    private var idle: () -> Void = { exit(InterruptHandler.exitStatus) }

    init() {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler { [unowned self] in self.interrupt() }
        s.resume()
        source = s
    }

    /// What Ctrl-C does outside generation (default: exit with status 130).
    func onIdle(_ action: @escaping () -> Void) { lock.lock(); idle = action; lock.unlock() }

    func beginGenerating() { lock.lock(); generating = true; cancelled = false; lock.unlock() }
    func endGenerating() { lock.lock(); generating = false; lock.unlock() }

    /// True once Ctrl-C asked the current generation to stop.
    var cancelRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelled
    }

    private func interrupt() {
        lock.lock()
        let (wasGenerating, wasCancelled, idle) = (generating, cancelled, idle)
        if generating { cancelled = true }
        lock.unlock()
        if !wasGenerating {
            idle()
        } else if wasCancelled {
            writeErr("\n")
            exit(Self.exitStatus)
        }
    }
}
