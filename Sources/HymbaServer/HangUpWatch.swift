#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Notices a client that closed its connection while it waits for a whole (non-streamed)
/// answer, and cancels its generation.
///
/// A streamed answer finds out by its next write failing. A whole answer writes nothing until
/// the end, and the connection allows half-closure (Hummingbird's setting), so the client's FIN
/// reaches no handler while the request is in flight. Instead the connection's TCP state is
/// polled: CLOSE_WAIT means the peer has closed its side, as llama-server's check of the socket
/// takes it too. (A client that shuts down only its sending side and still waits for the answer
/// is cancelled as well; HTTP clients don't do that.)
enum HangUpWatch {
    /// How often the state is looked at: a fraction of a token of the larger models.
    static let interval: Duration = .milliseconds(50)

    /// Polls `channel` until the task is cancelled (the answer is done) or the peer has closed;
    /// then cancels `ticket`. Does nothing where TCP_INFO is not available.
    static func start(_ channel: any Channel, ticket: GenerationTicket) -> Task<Void, Never>? {
#if os(Linux)
        guard let provider = channel as? SocketOptionProvider else { return nil }
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let info = try? await provider.getTCPInfo().get() else { return }
                if info.tcpi_state == UInt8(TCP_CLOSE_WAIT) || info.tcpi_state == UInt8(TCP_CLOSE) {
                    ticket.cancel()
                    return
                }
            }
        }
#else
        return nil
#endif
    }
}
