import Foundation
import HymbaFormat
import HymbaRuntime
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// `hymba-edge serve`: an OpenAI-compatible HTTP server over one mapped model with N slots.
///
///     let server = HymbaServer(configuration: config)
///     try await server.run { ready in print(ready) }   // until the task is cancelled
///
/// The HTTP side starts first (so `/health` answers 503 while the model loads), then the model
/// is loaded, the slots created and the scheduler started; the ready line is then reported.
/// Endpoints: `POST /v1/completions`, `POST /v1/chat/completions` (OpenAI's shapes, SSE when
/// streamed), `GET /v1/models`, `GET /health`, `POST /tokenize`, `POST /detokenize`,
/// `GET /metrics`. No endpoint reads or writes files.
public final class HymbaServer: Sendable {
    public let configuration: ServerConfiguration
    let metrics = ServerMetrics()
    private let state = Mutex<State>(.loading)
    private let boundPort = Mutex<Int?>(nil)

    enum State {
        case loading
        case ready(Engine)
        case failed(String)
    }

    /// What the handlers use once the model is loaded.
    struct Engine: @unchecked Sendable {
        let model: TextModel
        let scheduler: SlotScheduler
        let plan: SlotPlan
        let modelID: String
        let created: Int
    }

    /// Runs on the loading thread before the model is opened (tests hold the server in its
    /// loading state with it).
    private let beforeLoading: @Sendable () -> Void

    public init(configuration: ServerConfiguration) {
        self.configuration = configuration
        beforeLoading = {}
    }

    package init(configuration: ServerConfiguration, beforeLoading: @escaping @Sendable () -> Void) {
        self.configuration = configuration
        self.beforeLoading = beforeLoading
    }

    /// The port the server listens on, once it does.
    public var port: Int? { boundPort.withLock { $0 } }

    var engine: Engine? {
        state.withLock { if case let .ready(e) = $0 { return e } else { return nil } }
    }

    /// Runs until the surrounding task is cancelled (or the process gets SIGINT/SIGTERM when
    /// `handleSignals`). `onReady` gets the ready line once the model is loaded; a model that
    /// fails to load stops the server with that error.
    public func run(handleSignals: Bool = false, onReady: @escaping @Sendable (String) -> Void) async throws {
        try configuration.validate()
        let router = Router(context: ServerContext.self)
        Routes(server: self).add(to: router)
        let loaded = AsyncStream<Result<String, Error>>.makeStream()
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "hymba-edge"),
            onServerRunning: { [self] channel in
                boundPort.withLock { $0 = channel.localAddress?.port }
                // Load on a thread of its own: it maps, checks and decompresses for a while.
                Thread { [self] in
                    beforeLoading()
                    loaded.continuation.yield(Result { try load() })
                }.start()
            },
            logger: Self.quietLogger())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { handleSignals ? try await app.runService() : try await app.run() }
            group.addTask {
                for await result in loaded.stream {
                    switch result {
                    case let .success(line): onReady(line)
                    case let .failure(error): throw error
                    }
                    break
                }
            }
            // The loader's task ends after the ready line; the server's when it stops.
            defer { engine?.scheduler.stop() }
            _ = try await group.next()
            try await group.next()
        }
    }

    /// Loads the model, creates the slots and starts the scheduler; returns the ready line.
    private func load() throws -> String {
        do {
            let (model, plan) = try SlotPlan.load(configuration)
            let scheduler = try SlotScheduler(model: model, slots: plan.slots, options: model.sessionOptions,
                                              queueLimit: configuration.queueLimit, metrics: metrics)
            let id = URL(fileURLWithPath: configuration.modelPath).deletingPathExtension().lastPathComponent
            let engine = Engine(model: model, scheduler: scheduler, plan: plan, modelID: id, created: Int(Date().timeIntervalSince1970))
            scheduler.start()
            state.withLock { $0 = .ready(engine) }
            let address = "http://\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(port ?? configuration.port)"
            return "hymba-edge serve: listening on \(address) | model \(id) (\(configuration.modelPath)) | \(plan.slots) slots, ctx \(scheduler.slots[0].session.contextLength), queue \(configuration.queueLimit), threads \(model.sessionOptions.resolvedThreads) | plan: \(plan.summary)"
        } catch {
            state.withLock { $0 = .failed("\(error)") }
            throw error
        }
    }

    private static func quietLogger() -> Logger {
        var logger = Logger(label: "hymba-edge.serve")
        logger.logLevel = .critical
        return logger
    }
}

/// The request context: Hummingbird's core storage plus the connection's channel, whose close
/// cancels the request's generation (a client that disconnects frees its slot).
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
