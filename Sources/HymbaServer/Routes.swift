import Foundation
import HTTPTypes
import HymbaRuntime
import Hummingbird
import NIOCore

/// The HTTP endpoints (OpenAI's shapes) over a `HymbaServer`'s engine.
struct Routes: Sendable {
    let server: HymbaServer

    func add(to router: Router<ServerContext>) {
        router.add(middleware: GuardMiddleware(server: server))
        router.get("/health") { _, _ in health() }
        router.get("/v1/models") { _, _ in try models() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: server.metrics.text)))
        }
        router.post("/v1/completions") { request, context in try await complete(request, context, .completion) }
        router.post("/v1/chat/completions") { request, context in try await complete(request, context, .chat) }
        router.post("/tokenize") { request, _ in try await tokenize(request) }
        router.post("/detokenize") { request, _ in try await detokenize(request) }
    }

    private var configuration: ServerConfiguration { server.configuration }

    private func ready() throws -> HymbaServer.Engine {
        guard let engine = server.engine else { throw APIError.loading }
        return engine
    }

    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONValue.encode(object))))
    }

    // MARK: Small endpoints

    private func health() -> Response {
        guard let engine = server.engine else {
            return APIError.loading.response
        }
        let busy = engine.scheduler.slots.filter { !$0.isIdle }.count
        return Self.json(["status": "ok", "slots_idle": engine.scheduler.slots.count - busy, "slots_processing": busy])
    }

    private func models() throws -> Response {
        let e = try ready()
        let c = e.model.config
        return Self.json(["object": "list", "data": [[
            "id": e.modelID, "object": "model", "created": e.created, "owned_by": "hymba-edge",
            "meta": ["n_ctx": e.scheduler.slots[0].session.contextLength, "n_vocab": c.vocabSize, "n_layers": c.numLayers,
                     "slots": e.scheduler.slots.count] as [String: Any],
        ] as [String: Any]]])
    }

    private func body(_ request: Request) async throws -> [UInt8] {
        do {
            let buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError(status: .contentTooLarge, message: "the request body is over the limit of \(configuration.maxBodyBytes) bytes",
                           type: "invalid_request_error", code: "body_too_large")
        }
    }

    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
            throw APIError.invalid("the request body must be a JSON object", code: "invalid_json")
        }
        return o
    }

    /// `{"content": text, "add_special": bool}` → `{"tokens": [ids]}` (llama-server's shape;
    /// `add_special` adds BOS as `run` does, default false).
    private func tokenize(_ request: Request) async throws -> Response {
        let e = try ready()
        let fields = Fields(object: try object(try await body(request)))
        guard let content = try fields.string("content") else { throw APIError.missing("content", "a string") }
        let ids = e.model.encode(content, addBOS: try fields.bool("add_special") ?? false)
        return Self.json(["tokens": ids.map(Int.init)])
    }

    /// `{"tokens": [ids]}` → `{"content": text}`.
    private func detokenize(_ request: Request) async throws -> Response {
        let e = try ready()
        let o = try object(try await body(request))
        guard let list = o["tokens"] else { throw APIError.missing("tokens", "an array of token ids") }
        let ids = try tokenIDs(list, field: "tokens", vocabulary: e.model.config.vocabSize)
        return Self.json(["content": e.model.tokenizer.decode(ids)])
    }

    private func tokenIDs(_ value: Any, field: String, vocabulary: Int) throws -> [Int32] {
        guard let list = value as? [Any] else { throw APIError.wrongType(field, expected: "an array of token ids", found: value) }
        return try list.enumerated().map { i, v in
            guard let id = JSONValue.integer(v) else { throw APIError.wrongType("\(field)[\(i)]", expected: "a token id", found: v) }
            guard id >= 0, id < vocabulary else { throw APIError.outOfRange("\(field)[\(i)]", id, "a token id in 0…\(vocabulary - 1)") }
            return Int32(id)
        }
    }

    // MARK: Completions

    private func complete(_ request: Request, _ context: ServerContext, _ kind: CompletionRequest.Kind) async throws -> Response {
        let e = try ready()
        let r = try CompletionRequest(body: try await body(request), kind: kind, format: e.model.chatFormat)
        if let m = r.model, m != e.modelID {
            throw APIError(status: .notFound, message: "the model '\(m)' does not exist; this server serves '\(e.modelID)' (GET /v1/models)",
                           type: "invalid_request_error", param: "model", code: "model_not_found")
        }
        let job = try makeJob(r, e)
        let ticket = try e.scheduler.submit(job)
        context.channel.closeFuture.whenComplete { _ in ticket.cancel() }
        let reply = Reply(kind: kind, model: e.modelID, includeUsage: r.includeUsage)
        if r.stream {
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                try await withTaskCancellationHandler {
                                    try await reply.stream(ticket, to: &writer)
                                } onCancel: { ticket.cancel() }
                            })
        }
        let watch = HangUpWatch.start(context.channel, ticket: ticket)
        defer { watch?.cancel() }
        return try await withTaskCancellationHandler {
            try await reply.whole(ticket)
        } onCancel: { ticket.cancel() }
    }

    /// The request checked against the model and the context: the prompt's tokens, the limit.
    private func makeJob(_ r: CompletionRequest, _ e: HymbaServer.Engine) throws -> GenerationJob {
        let model = e.model
        let promptField = r.kind == .chat ? "messages" : "prompt"
        let tokens: [Int32]
        switch r.prompt {
        case let .text(s): tokens = model.encode(s)
        case let .tokens(ids): tokens = try tokenIDs(ids.map(Int.init), field: "prompt", vocabulary: model.config.vocabSize)
        }
        guard !tokens.isEmpty else {
            throw APIError.invalid("'\(promptField)' gives no tokens", param: promptField, code: "invalid_value")
        }
        let ctx = e.scheduler.slots[0].session.contextLength
        guard tokens.count <= ctx else {
            throw APIError.invalid("'\(promptField)' has \(tokens.count) tokens but the context holds \(ctx) (--ctx)",
                                   param: promptField, code: "context_length_exceeded")
        }
        let maxField = r.kind == .chat ? "max_completion_tokens or max_tokens" : "max_tokens"
        if let m = r.maxTokens, tokens.count + m > ctx + 1 {
            throw APIError.invalid("'\(maxField)' is \(m) but the prompt's \(tokens.count) tokens leave room for \(ctx + 1 - tokens.count) in the context of \(ctx) (--ctx)",
                                   param: r.kind == .chat ? "max_tokens" : "max_tokens", code: "context_length_exceeded")
        }
        var stops = r.stop
        if r.kind == .chat { stops += Self.turnStops(model) }
        return GenerationJob(prompt: tokens, maxTokens: r.maxTokens ?? (ctx + 1 - tokens.count), sampling: r.sampling,
                             presencePenalty: r.presencePenalty, frequencyPenalty: r.frequencyPenalty,
                             stopStrings: stops, stopTokens: r.ignoreEOS ? [] : model.endOfSequence)
    }

    /// The chat format's next-turn header, which ends an answer (as `ChatSession` stops).
    static func turnStops(_ model: TextModel) -> [String] {
        switch model.chatFormat.style {
        case .hymba: return ["<extra_id_1>"]
        case .generic: return ["\nUser:"]
        }
    }
}

/// Refuses what a request may not do before it reaches a route (the API key), answers every
/// error with OpenAI's error object, and counts requests for /metrics.
struct GuardMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let server: HymbaServer

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let endpoint = Self.endpoints.contains(request.uri.path) ? request.uri.path : "other"
        let response: Response
        do {
            try authorize(request)
            response = try await next(request, context)
        } catch let e as APIError {
            response = e.response
        } catch let e as HTTPResponseError {
            // Hummingbird's own refusals (no such route, a body it could not read).
            let message = e.status == .notFound ? "no endpoint \(request.method) \(request.uri.path)" : "\(e)"
            response = APIError(status: e.status, message: message, type: e.status == .notFound ? "not_found_error" : "invalid_request_error").response
        } catch {
            response = APIError(status: .internalServerError, message: "\(error)", type: "server_error").response
        }
        server.metrics.request(endpoint: endpoint, status: response.status.code)
        return response
    }

    static let endpoints: Set<String> = ["/health", "/v1/models", "/metrics", "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"]

    private func authorize(_ request: Request) throws {
        guard let key = server.configuration.apiKey, request.uri.path != "/health" else { return }
        let given = request.headers[.authorization] ?? ""
        // Compared in time independent of where the strings first differ.
        let expected = Array("Bearer \(key)".utf8), found = Array(given.utf8)
        var diff = expected.count ^ found.count
        for i in 0..<expected.count { diff |= Int(expected[i] ^ (i < found.count ? found[i] : 0)) }
        if diff != 0 { throw APIError.unauthorized }
    }
}
