import Foundation
import HymbaFormat
import HymbaRuntime

/// How `hymba-edge serve` runs: the model, where it listens, how many requests at once.
public struct ServerConfiguration: Sendable {
    public var modelPath: String
    /// Loopback by default: the server has no TLS, and only `--api-key` guards it.
    public var host = "127.0.0.1"
    /// 0: an ephemeral port (tests); the ready line and `HymbaServer.port` say which.
    public var port = 8080
    /// Slots (requests decoded at once); nil: as many as the memory plan fits, at most 4.
    public var parallel: Int?
    /// Tokens per slot; nil: the model's max_position_embeddings.
    public var contextLength: Int?
    public var kvType: KVType = .f16
    public var memoryBudgetBytes: Int?
    /// Kernel threads (0: one per core), shared by the slots (one step runs at a time).
    public var threads = 0
    /// When set, every endpoint but /health wants `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Requests that may wait for a slot; more are refused with 503 and Retry-After.
    public var queueLimit = 16
    /// Largest request body accepted (bytes).
    public var maxBodyBytes = 1 << 20
    /// Seconds an idle connection is kept open.
    public var idleTimeoutSeconds = 60
    public var verifyChecksums = true

    /// The most slots chosen when `parallel` is not given.
    public static let defaultMaximumSlots = 4
    /// The most slots accepted.
    public static let maximumSlots = 64

    public init(modelPath: String) { self.modelPath = modelPath }

    /// Throws an error naming the first option out of range.
    public func validate() throws {
        func bad(_ s: String) -> ServerError { .invalidOption(s) }
        if let parallel, parallel < 1 || parallel > Self.maximumSlots { throw bad("--parallel \(parallel): must be in 1…\(Self.maximumSlots)") }
        if let c = contextLength, c < 1 { throw bad("--ctx \(c): must be at least 1") }
        if port < 0 || port > 65535 { throw bad("--port \(port): must be in 0…65535") }
        if queueLimit < 0 { throw bad("--queue \(queueLimit): must be ≥ 0") }
        if threads < 0 || threads > HymbaOptions.maximumThreads { throw bad("--threads \(threads): must be in 0…\(HymbaOptions.maximumThreads)") }
        if let k = apiKey, k.isEmpty { throw bad("--api-key: the key is empty") }
        if maxBodyBytes < 1024 { throw bad("the body limit \(maxBodyBytes) must be at least 1024 bytes") }
        if idleTimeoutSeconds < 1 { throw bad("the idle timeout \(idleTimeoutSeconds) must be at least 1 second") }
    }
}

/// Why the server could not start.
public enum ServerError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    /// The budget cannot hold the slots asked for; the breakdown says where the bytes go.
    case budgetTooSmall(String)

    public var description: String {
        switch self {
        case let .invalidOption(s): return s
        case let .budgetTooSmall(s): return s
        }
    }
}
