import Foundation
import Hummingbird
import NIOCore

/// Turns a ticket's events into OpenAI's response objects: one JSON body, or Server-Sent
/// Events (`data: {chunk}` lines, then `data: [DONE]`) when streamed.
struct Reply: Sendable {
    let kind: CompletionRequest.Kind
    let model: String
    let includeUsage: Bool
    let id: String
    let created = Int(Date().timeIntervalSince1970)

    init(kind: CompletionRequest.Kind, model: String, includeUsage: Bool) {
        self.kind = kind
        self.model = model
        self.includeUsage = includeUsage
        let hex = (0..<24).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
        id = (kind == .chat ? "chatcmpl-" : "cmpl-") + hex
    }

    private var object: String { kind == .chat ? "chat.completion" : "text_completion" }
    private var chunkObject: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    /// The whole answer, once generation ends.
    func whole(_ ticket: GenerationTicket) async throws -> Response {
        var text = ""
        for await event in ticket.events {
            switch event {
            case let .text(piece): text += piece
            case let .failed(message): throw APIError(status: .internalServerError, message: message, type: "server_error")
            case let .finished(s):
                var choice: [String: Any] = ["index": 0, "logprobs": NSNull(), "finish_reason": s.reason.rawValue]
                if kind == .chat { choice["message"] = ["role": "assistant", "content": text] } else { choice["text"] = text }
                return Routes.json(envelope(object, choices: [choice], summary: s, usage: true))
            }
        }
        // The stream ended without a finish: the ticket was cancelled (the client is gone).
        throw APIError(status: .serviceUnavailable, message: "the generation was cancelled", type: "unavailable_error", code: "cancelled")
    }

    /// The answer as Server-Sent Events, a chunk per text piece. A failed write (the client
    /// went away) ends the loop, which cancels the ticket.
    func stream(_ ticket: GenerationTicket, to writer: inout any ResponseBodyWriter) async throws {
        defer { ticket.cancel() }  // after a finish this changes nothing; otherwise it frees the slot
        if kind == .chat { try await send(chunk(delta: ["role": "assistant", "content": ""]), to: &writer) }
        for await event in ticket.events {
            switch event {
            case let .text(piece):
                try await send(chunk(delta: kind == .chat ? ["content": piece] : nil, text: piece), to: &writer)
            case let .failed(message):
                let error = APIError(status: .internalServerError, message: message, type: "server_error")
                try await send(error.json, to: &writer)
                try await writer.finish(nil)
                return
            case let .finished(s):
                var last = chunk(delta: kind == .chat ? [:] : nil, text: "", finish: s.reason.rawValue)
                last["timings"] = timings(s)
                try await send(last, to: &writer)
                if includeUsage { try await send(envelope(chunkObject, choices: [], summary: s, usage: true), to: &writer) }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
                return
            }
        }
    }

    private func send(_ object: [String: Any], to writer: inout any ResponseBodyWriter) async throws {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(JSONValue.encode(object))
        buffer.writeString("\n\n")
        try await writer.write(buffer)
    }

    private func chunk(delta: [String: Any]?, text: String = "", finish: String? = nil) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "logprobs": NSNull(), "finish_reason": finish ?? NSNull()]
        if let delta { choice["delta"] = delta } else { choice["text"] = text }
        var o = envelope(chunkObject, choices: [choice], summary: nil, usage: false)
        if includeUsage { o["usage"] = NSNull() }
        return o
    }

    private func envelope(_ object: String, choices: [[String: Any]], summary: GenerationSummary?, usage: Bool) -> [String: Any] {
        var o: [String: Any] = ["id": id, "object": object, "created": created, "model": model, "choices": choices,
                                "system_fingerprint": "hymba-edge"]
        if let s = summary, usage {
            o["usage"] = ["prompt_tokens": s.promptTokens, "completion_tokens": s.completionTokens,
                          "total_tokens": s.promptTokens + s.completionTokens]
            o["timings"] = timings(s)
        }
        return o
    }

    /// llama-server's `timings`: the prompt (to the first token) and the tokens decoded after it.
    private func timings(_ s: GenerationSummary) -> [String: Any] {
        let promptMS = s.prefillSeconds * 1000, decodeMS = s.decodeSeconds * 1000
        return [
            "prompt_n": s.promptTokens, "prompt_ms": promptMS,
            "prompt_per_token_ms": s.promptTokens > 0 ? promptMS / Double(s.promptTokens) : 0,
            "prompt_per_second": promptMS > 0 ? Double(s.promptTokens) / s.prefillSeconds : 0,
            "predicted_n": s.decodedTokens, "predicted_ms": decodeMS,
            "predicted_per_token_ms": s.decodedTokens > 0 ? decodeMS / Double(s.decodedTokens) : 0,
            "predicted_per_second": decodeMS > 0 ? Double(s.decodedTokens) / s.decodeSeconds : 0,
        ]
    }
}
