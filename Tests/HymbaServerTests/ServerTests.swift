import AsyncHTTPClient
import Foundation
import HymbaRuntime
import HymbaServer
import NIOCore
import NIOHTTP1
import Testing

/// `hymba-edge serve` driven over loopback by a real HTTP client (AsyncHTTPClient) and raw
/// sockets: OpenAI's shapes, greedy answers equal to the CLI's generator alone and batched,
/// streaming, stops, errors, cancellation by disconnect, the queue, the API key.
@Suite("Server", .serialized)
struct ServerTests {
    static let prompts = ["def fibonacci(n):", "import os\n", "class Stack:\n    def push(self, x):", "for i in range(10):"]

    /// What `hymba-edge run --temp 0 -n N` generates (the same Generator, the server's session options).
    static func greedy(_ prompt: String, tokens: Int, stop: [String] = []) throws -> GenerationResult {
        var options = HymbaOptions(contextLength: 256, threads: 2)
        options.contextLength = 256
        let model = try TextModel.open(path: shippedModel, options: options)
        let generator = try Generator(model: model)
        return try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: tokens, sampling: .greedy, stopStrings: stop)) { _ in .continue }
    }

    static func completion(_ prompt: Any, tokens: Int, stream: Bool = false, extra: [String: Any] = [:]) -> [String: Any] {
        var body: [String: Any] = ["model": "tiny-code-hymba-q8", "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": stream]
        for (k, v) in extra { body[k] = v }
        return body
    }

    @Test("health, models, ready line, tokenize and detokenize, metrics")
    func smallEndpoints() async throws {
        let s = try await RunningServer.start { $0.parallel = 2 }
        defer { Task { await s.stop() } }
        #expect(s.readyLine.contains("127.0.0.1:\(s.port)") && s.readyLine.contains("2 slots") && s.readyLine.contains("tiny-code-hymba-q8"))
        let health = try await s.request(.GET, "/health")
        #expect(health.status == 200 && health.json["status"] as? String == "ok")
        let models = try await s.request(.GET, "/v1/models")
        let data = models.json["data"] as? [[String: Any]]
        #expect(models.json["object"] as? String == "list" && data?.first?["id"] as? String == "tiny-code-hymba-q8")
        #expect(data?.first?["object"] as? String == "model")

        let tok = try await s.request(.POST, "/tokenize", json: ["content": "def fibonacci(n):", "add_special": true])
        let ids = tok.json["tokens"] as? [Int] ?? []
        let model = try TextModel.open(path: shippedModel)
        #expect(ids == model.encode("def fibonacci(n):").map(Int.init))
        let detok = try await s.request(.POST, "/detokenize", json: ["tokens": ids])
        #expect(detok.json["content"] as? String == "def fibonacci(n):")
        let bad = try await s.request(.POST, "/detokenize", json: ["tokens": [1, 99_999_999]])
        #expect(bad.status == 400 && (bad.errorObject?["message"] as? String ?? "").contains("tokens[1]"))

        let metrics = try await s.request(.GET, "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("hymba_slots_total 2") && metrics.body.contains("# TYPE hymba_requests_total counter"))
        #expect(metrics.body.contains("hymba_requests_total{endpoint=\"/tokenize\",status=\"200\"} 1"))
    }

    @Test("greedy completions equal the CLI's generator: whole, streamed, with usage, timings and stops")
    func completions() async throws {
        let s = try await RunningServer.start { $0.parallel = 2 }
        defer { Task { await s.stop() } }
        let prompt = Self.prompts[0]
        let expected = try Self.greedy(prompt, tokens: 24)

        let whole = try await s.request(.POST, "/v1/completions", json: Self.completion(prompt, tokens: 24))
        #expect(whole.status == 200, "\(whole.body)")
        let choice = (whole.json["choices"] as? [[String: Any]])?.first
        #expect(choice?["text"] as? String == expected.text)
        #expect(choice?["finish_reason"] as? String == (expected.stopReason == .maxTokens ? "length" : "stop"))
        #expect(whole.json["object"] as? String == "text_completion")
        let usage = whole.json["usage"] as? [String: Any]
        #expect(usage?["prompt_tokens"] as? Int == expected.stats.promptTokens)
        #expect(usage?["completion_tokens"] as? Int == expected.tokens.count)
        #expect(usage?["total_tokens"] as? Int == expected.stats.promptTokens + expected.tokens.count)
        let timings = whole.json["timings"] as? [String: Any]
        #expect((timings?["predicted_per_second"] as? Double ?? 0) > 0 && (timings?["prompt_per_second"] as? Double ?? 0) > 0)

        // The same prompt as token ids.
        let model = try TextModel.open(path: shippedModel)
        let byIDs = try await s.request(.POST, "/v1/completions", json: Self.completion(model.encode(prompt).map(Int.init), tokens: 24))
        #expect((byIDs.json["choices"] as? [[String: Any]])?.first?["text"] as? String == expected.text)

        let streamed = try await s.request(.POST, "/v1/completions",
                                           json: Self.completion(prompt, tokens: 24, stream: true, extra: ["stream_options": ["include_usage": true]]))
        #expect(streamed.status == 200 && streamed.headers["Content-Type"].first == "text/event-stream")
        #expect(streamed.events.last == "[DONE]")
        let chunks = streamed.eventObjects
        let text = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined()
        #expect(text == expected.text)
        let finishes = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        #expect(finishes == ["length"])
        let usageChunk = chunks.last
        #expect((usageChunk?["choices"] as? [Any])?.isEmpty == true)
        #expect((usageChunk?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 24)

        // A stop string taken from the middle of the greedy text: the answer ends before it.
        let words = expected.text.split(separator: " ")
        if words.count >= 3 {
            let stop = String(words[2])
            let cut = try Self.greedy(prompt, tokens: 24, stop: [stop])
            let stopped = try await s.request(.POST, "/v1/completions", json: Self.completion(prompt, tokens: 24, extra: ["stop": [stop, "@@@"]]))
            let c = (stopped.json["choices"] as? [[String: Any]])?.first
            #expect(c?["text"] as? String == cut.text && cut.stopReason == .stopString)
            #expect(c?["finish_reason"] as? String == "stop")
            let answer = c?["text"] as? String ?? stop
            let holdsStop = answer.range(of: stop) != nil
            #expect(!holdsStop, "\(answer) holds the stop string \(stop)")
        } else {
            Issue.record("the greedy text '\(expected.text)' is too short for the stop-string check")
        }
    }

    @Test("chat completions: rendered in the model's chat format, whole and streamed")
    func chat() async throws {
        let s = try await RunningServer.start { $0.parallel = 2 }
        defer { Task { await s.stop() } }
        let model = try TextModel.open(path: shippedModel)
        let messages: [[String: Any]] = [["role": "system", "content": "You write Python."], ["role": "user", "content": "Sum a list."]]
        let rendered = model.chatFormat.render([.system("You write Python."), .user("Sum a list.")], addGenerationPrompt: true)
        let expected = try Self.greedy(rendered, tokens: 16, stop: ["<extra_id_1>"])
        let body: [String: Any] = ["model": "tiny-code-hymba-q8", "messages": messages, "max_tokens": 16, "temperature": 0]
        let whole = try await s.request(.POST, "/v1/chat/completions", json: body)
        #expect(whole.status == 200, "\(whole.body)")
        #expect(whole.json["object"] as? String == "chat.completion")
        let message = ((whole.json["choices"] as? [[String: Any]])?.first?["message"]) as? [String: Any]
        #expect(message?["role"] as? String == "assistant")
        #expect(message?["content"] as? String == expected.text)

        var streamBody = body
        streamBody["stream"] = true
        let streamed = try await s.request(.POST, "/v1/chat/completions", json: streamBody)
        let chunks = streamed.eventObjects
        #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        #expect(deltas.first?["role"] as? String == "assistant")
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == expected.text)
        #expect(streamed.events.last == "[DONE]")
    }

    @Test("concurrent greedy requests give the same text as alone (batched decoding)")
    func batched() async throws {
        let s = try await RunningServer.start { $0.parallel = 4 }
        defer { Task { await s.stop() } }
        let expected = try Self.prompts.map { try Self.greedy($0, tokens: 20).text }
        let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, p) in Self.prompts.enumerated() {
                group.addTask {
                    let r = try await s.request(.POST, "/v1/completions", json: Self.completion(p, tokens: 20, stream: i % 2 == 0))
                    let text = i % 2 == 0
                        ? r.eventObjects.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined()
                        : (r.json["choices"] as? [[String: Any]])?.first?["text"] as? String ?? "<no text: \(r.body)>"
                    return (i, text)
                }
            }
            var out = [String](repeating: "", count: Self.prompts.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        #expect(texts == expected)
        // The steps ran several rows at once.
        let steps = try await s.metric("hymba_decode_steps_total") ?? 0, rows = try await s.metric("hymba_decode_rows_total") ?? 0
        #expect(rows > steps * 1.5, "mean batch \(rows / max(1, steps))")
    }

    @Test("bad requests get OpenAI's error object naming the problem; other streams go on")
    func errors() async throws {
        let s = try await RunningServer.start { $0.parallel = 2; $0.contextLength = 64 }
        defer { Task { await s.stop() } }
        // A stream running through all of it must finish normally.
        let background = Task { try await s.request(.POST, "/v1/completions", json: Self.completion(Self.prompts[1], tokens: 40, stream: true)) }

        let cases: [(String, String?, [String: Any]?, Int, String)] = [
            ("/v1/completions", "{not json", nil, 400, "not valid JSON"),
            ("/v1/completions", "[1, 2]", nil, 400, "JSON object"),
            ("/v1/completions", nil, ["max_tokens": 4], 400, "'prompt' is required"),
            ("/v1/completions", nil, ["prompt": 12.5], 400, "'prompt' must be a string or an array of token ids"),
            ("/v1/completions", nil, ["prompt": "x", "temperature": "hot"], 400, "'temperature' must be a number"),
            ("/v1/completions", nil, ["prompt": "x", "temperature": 3], 400, "'temperature' is 3"),
            ("/v1/completions", nil, ["prompt": "x", "top_p": 1.5], 400, "'top_p'"),
            ("/v1/completions", nil, ["prompt": "x", "max_tokens": 0], 400, "'max_tokens'"),
            ("/v1/completions", nil, ["prompt": "x", "max_tokens": 64], 400, "'max_tokens' is 64"),
            ("/v1/completions", nil, ["prompt": "x", "stream": "yes"], 400, "'stream' must be true or false"),
            ("/v1/completions", nil, ["prompt": "x", "stop": ["a", "b", "c", "d", "e"]], 400, "'stop' has 5 strings"),
            ("/v1/completions", nil, ["prompt": "x", "presence_penalty": -3], 400, "'presence_penalty'"),
            ("/v1/completions", nil, ["prompt": "x", "model": "gpt-4"], 404, "'gpt-4' does not exist"),
            ("/v1/completions", nil, ["prompt": String(repeating: "hello ", count: 80)], 400, "but the context holds 64"),
            ("/v1/completions", nil, ["prompt": [1, 40000]], 400, "'prompt[1]'"),
            ("/v1/chat/completions", nil, ["messages": []], 400, "'messages' is empty"),
            ("/v1/chat/completions", nil, ["messages": [["role": "wizard", "content": "x"]]], 400, "'messages[0].role' is \"wizard\""),
            ("/v1/chat/completions", nil, ["messages": [["role": "user"]]], 400, "'messages[0].content' is required"),
            ("/v1/nothing", nil, ["prompt": "x"], 404, "no endpoint"),
        ]
        for (path, raw, json, status, message) in cases {
            let r = try await s.request(.POST, path, json: json, raw: raw)
            let error = r.errorObject ?? [:]
            let text: String = error["message"] as? String ?? ""
            let what = "\(path) \(raw ?? "\(json ?? [:])"): \(r.status) \(r.body)"
            #expect(r.status == status, "\(what)")
            #expect(text.contains(message), "\(what)")
            #expect(error["type"] is String && error.keys.contains("code"), "\(what)")
        }
        // Over the body limit (1 MiB).
        let big = try await s.request(.POST, "/v1/completions", raw: "{\"prompt\": \"" + String(repeating: "a", count: 1 << 20) + "\"}")
        #expect(big.status == 413 && (big.errorObject?["message"] as? String ?? "").contains("1048576"))

        let r = try await background.value
        #expect(r.events.last == "[DONE]" && r.eventObjects.contains { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "length" })
        let health = try await s.request(.GET, "/health")
        #expect(health.status == 200)
    }

    @Test("a client that hangs up mid-stream frees its slot within a token")
    func disconnect() async throws {
        let s = try await RunningServer.start { $0.parallel = 1; $0.contextLength = 256 }
        defer { Task { await s.stop() } }
        let c = try RawConnection(port: s.port)
        c.post("/v1/completions", json: #"{"prompt": "def f(x):", "max_tokens": 250, "temperature": 0, "stream": true, "stop": ["@@@@"]}"#)
        let head = c.read(until: "\"text\"")
        #expect(head.contains("200 OK"))
        c.hangUp()
        try await Self.expectSlotFreedByHangUp(s)
    }

    /// After the only request's client hung up: within 10 s the generation is counted as
    /// cancelled, the slot is free, no token was counted as generated (it never completed),
    /// and the slot serves the next request.
    static func expectSlotFreedByHangUp(_ s: RunningServer) async throws {
        var cancelled = 0.0
        for _ in 0..<200 where cancelled < 1 {
            try await Task.sleep(for: .milliseconds(50))
            cancelled = try await s.metric("hymba_generations_cancelled_total") ?? 0
        }
        #expect(cancelled == 1)
        #expect(try await s.metric("hymba_slots_busy") == 0)
        #expect(try await s.metric("hymba_generated_tokens_total") == 0)
        let r = try await s.request(.POST, "/v1/completions", json: completion("x = ", tokens: 4))
        #expect(r.status == 200)
    }

    @Test("a client that hangs up while waiting for a whole (non-streamed) answer frees its slot within a token")
    func disconnectWhole() async throws {
        let s = try await RunningServer.start { $0.parallel = 1; $0.contextLength = 1024 }
        defer { Task { await s.stop() } }
        let c = try RawConnection(port: s.port)
        // Up to 1000 tokens, past any end-of-sequence: long enough to hang up in the middle.
        c.post("/v1/completions", json: #"{"prompt": "def f(x):", "max_tokens": 1000, "temperature": 0, "ignore_eos": true}"#)
        var busy = 0.0
        for _ in 0..<500 where busy < 1 {
            try await Task.sleep(for: .milliseconds(5))
            busy = try await s.metric("hymba_slots_busy") ?? 0
        }
        #expect(busy == 1, "the request never took the slot")
        c.hangUp()
        try await Self.expectSlotFreedByHangUp(s)
    }

    @Test("--timeout: an idle connection is closed, before its first request and between requests")
    func idleTimeout() async throws {
        let s = try await RunningServer.start { $0.parallel = 1; $0.idleTimeoutSeconds = 1 }
        defer { Task { await s.stop() } }
        let clock = ContinuousClock()
        let silent = try RawConnection(port: s.port)
        let start = clock.now
        #expect(silent.waitForClose(), "a connection that sent nothing was still open after 30 s")
        let waited = clock.now - start
        #expect(waited >= .milliseconds(900) && waited < .seconds(10), "closed after \(waited), --timeout 1")

        let kept = try RawConnection(port: s.port)
        kept.post("/tokenize", json: #"{"content": "x"}"#)
        #expect(kept.read(until: "]}").contains("200 OK"))
        let after = clock.now
        #expect(kept.waitForClose(), "a kept-alive connection was still open 30 s after its answer")
        #expect(clock.now - after < .seconds(10))
    }

    @Test("while the model loads: /health and the API answer 503 with Retry-After, then 200 once ready")
    func loading() async throws {
        var c = ServerConfiguration(modelPath: shippedModel)
        c.port = 0
        c.parallel = 1
        c.contextLength = 256
        let gate = DispatchSemaphore(value: 0)
        let server = HymbaServer(configuration: c, beforeLoading: { gate.wait() })
        let ready = AsyncStream<String>.makeStream()
        let task = Task {
            defer { ready.continuation.finish() }
            try await server.run { ready.continuation.yield($0) }
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer {
            gate.signal()  // never leave the loading thread blocked
            task.cancel()
            Task { try? await client.shutdown(); _ = try? await task.value }
        }
        var port: Int?
        for _ in 0..<600 where port == nil {
            try await Task.sleep(for: .milliseconds(20))
            port = server.port
        }
        let p = try #require(port, "the server did not listen within 12 s")
        func get(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> (Int, HTTPHeaders, String) {
            var r = HTTPClientRequest(url: "http://127.0.0.1:\(p)\(path)")
            r.method = method
            if let body { r.body = .bytes(ByteBuffer(string: body)); r.headers.add(name: "Content-Type", value: "application/json") }
            let response = try await client.execute(r, timeout: .seconds(30))
            return (Int(response.status.code), response.headers, String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        let health = try await get(.GET, "/health")
        #expect(health.0 == 503 && health.1["Retry-After"].first == "1", "\(health)")
        #expect(health.2.contains("\"model_loading\""), "\(health.2)")
        let completion = try await get(.POST, "/v1/completions", #"{"prompt": "x", "max_tokens": 2}"#)
        #expect(completion.0 == 503 && completion.2.contains("\"model_loading\""), "\(completion)")
        #expect(try await get(.GET, "/v1/models").0 == 503)

        gate.signal()
        var line: String?
        for await l in ready.stream { line = l; break }
        #expect(line?.contains("listening on") == true)
        let after = try await get(.GET, "/health")
        #expect(after.0 == 200 && after.2.contains("\"ok\""), "\(after)")
    }

    @Test("beyond the slots and the queue: 503 with Retry-After")
    func queueFull() async throws {
        let s = try await RunningServer.start { $0.parallel = 1; $0.queueLimit = 1 }
        defer { Task { await s.stop() } }
        let body = #"{"prompt": "def f(x):", "max_tokens": 200, "temperature": 0, "stream": true, "stop": ["@@@@"]}"#
        let first = try RawConnection(port: s.port), second = try RawConnection(port: s.port)
        first.post("/v1/completions", json: body)
        #expect(first.read(until: "\"text\"").contains("200 OK"))
        second.post("/v1/completions", json: body)  // waits in the queue
        var queued = 0.0
        for _ in 0..<100 where queued < 1 {
            try await Task.sleep(for: .milliseconds(20))
            queued = try await s.metric("hymba_queue_length") ?? 0
        }
        #expect(queued == 1)
        let third = try await s.request(.POST, "/v1/completions", json: Self.completion("x", tokens: 4))
        #expect(third.status == 503 && third.headers["Retry-After"].first == "1")
        #expect(third.errorObject?["code"] as? String == "queue_full")
        first.hangUp()
        #expect(second.read(until: "\"text\"").contains("200 OK"))  // the queued one got the slot
        second.hangUp()
    }

    @Test("--api-key: 401 without the key on every endpoint but /health")
    func apiKey() async throws {
        let s = try await RunningServer.start { $0.parallel = 1; $0.apiKey = "sesame" }
        defer { Task { await s.stop() } }
        #expect(try await s.request(.GET, "/health").status == 200)
        for path in ["/v1/models", "/metrics"] {
            let r = try await s.request(.GET, path)
            #expect(r.status == 401 && r.errorObject?["type"] as? String == "authentication_error")
            #expect(try await s.request(.GET, path, headers: [("Authorization", "Bearer sesamx")]).status == 401)
            #expect(try await s.request(.GET, path, headers: [("Authorization", "Bearer sesame")]).status == 200)
        }
        let post = try await s.request(.POST, "/v1/completions", json: Self.completion("x", tokens: 2))
        #expect(post.status == 401)
        let ok = try await s.request(.POST, "/v1/completions", json: Self.completion("x", tokens: 2), headers: [("Authorization", "Bearer sesame")])
        #expect(ok.status == 200)
    }

    @Test("a memory budget that cannot hold the slots asked for is refused with the breakdown")
    func budget() async throws {
        do {
            let s = try await RunningServer.start { $0.parallel = 4; $0.memoryBudgetBytes = 40 << 20 }
            await s.stop()
            Issue.record("a 40 MiB budget held 4 slots")
        } catch let e as ServerError {
            #expect(e.description.contains("cannot hold 4 slots") && e.description.contains("per slot: KV caches"), "\(e)")
        }
    }
}
