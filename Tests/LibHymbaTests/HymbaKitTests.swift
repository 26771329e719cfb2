import Foundation
import HymbaFormat
import HymbaKit
import HymbaRuntime
import Testing

/// The public Swift API: the same runtime for Swift programs.
@Suite("HymbaKit Swift API")
struct HymbaKitTests {
    @Test("generate with a closure, and as an AsyncSequence, give the runtime's greedy text")
    func closureAndAsyncSequence() async throws {
        let model = try LibHymba.model.get()
        let prompt = LibHymba.prompts[1]
        var sampling = Sampling.greedy
        sampling.maxTokens = 20
        var pieces: [Piece] = []
        let done = try model.makeSession().generate(prompt, sampling: sampling) { pieces.append($0); return .continue }
        let g = try Generator(model: model.textModel)
        let runtime = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 20, sampling: .greedy)) { _ in .continue }
        #expect(done.text == runtime.text && done.tokens == runtime.tokens && done.stopReason == .maxTokens)
        #expect(pieces.map(\.text).joined() == done.text && pieces.compactMap(\.token) == done.tokens)

        var streamed = ""
        for try await piece in try model.makeSession().pieces(prompt, sampling: sampling) {
            #expect(!piece.isEmpty)
            streamed += piece
        }
        #expect(streamed == done.text)
    }

    @Test("abandoning the AsyncSequence stops generation; the session is then free again")
    func abandonedSequence() async throws {
        let model = try LibHymba.model.get()
        let session = try model.makeSession()
        var sampling = Sampling.greedy
        sampling.maxTokens = 500
        var received = 0
        for try await _ in session.pieces(LibHymba.prompts[0], sampling: sampling) {
            received += 1
            if received == 3 { break }
        }
        // The generating thread notices at its next token and releases the session.
        var freed = false
        for _ in 0..<500 {
            if (try? session.reset()) != nil { freed = true; break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(freed)
        #expect(received == 3)
    }

    @Test("the session accounting: eval then generate, the pending last token, reset, context full")
    func sessionAccounting() throws {
        let model = try LibHymba.model.get()
        let session = try model.makeSession(SessionOptions(contextLength: 40, kvCacheType: .f32))
        #expect(session.contextLength == 40 && session.tokenCount == 0)
        let ids = model.tokenize(LibHymba.prompts[0])
        let logits = try session.eval(ids)
        // eval's logits are the runtime session's for the same ids.
        let reference = try HymbaSession(model: model.textModel.model, options: HymbaOptions(contextLength: 40, kvType: .f32))
        try reference.prefill(tokens: ids.map(Int.init))
        #expect(logits == Array(reference.logits))
        #expect(try session.eval([]) == logits)
        var sampling = Sampling.greedy
        sampling.maxTokens = 5
        let first = try session.generate("", sampling: sampling) { _ in .continue }
        #expect(session.tokenCount == ids.count + 5)  // the 5th token is pending, counted
        sampling.maxTokens = 100
        let rest = try session.generate("", sampling: sampling) { _ in .continue }
        #expect(rest.stopReason == .contextFull && session.tokenCount == 40)
        #expect(rest.promptTokens == 1)  // the pending token
        let whole = try model.makeSession(SessionOptions(contextLength: 40, kvCacheType: .f32))
            .generate(LibHymba.prompts[0], sampling: sampling) { _ in .continue }
        #expect(first.text + rest.text == whole.text && first.tokens + rest.tokens == whole.tokens)
        #expect(throws: HymbaError.self) { try session.eval([1]) }
        do { _ = try session.eval([1]) } catch let e as HymbaError { #expect(e.kind == .contextFull) }
        try session.reset()
        #expect(session.tokenCount == 0)
        do { _ = try session.eval([Int32(model.vocabularySize)]) } catch let e as HymbaError {
            #expect(e.kind == .invalidArgument && e.message.contains("at index 0"))
        }
    }

    @Test("a call into a session from its own generate closure is refused as busy")
    func busySession() throws {
        let model = try LibHymba.model.get()
        let session = try model.makeSession()
        var refusal: HymbaError?
        var sampling = Sampling.greedy
        sampling.maxTokens = 3
        try session.generate("x", sampling: sampling) { _ in
            if refusal == nil {
                do { _ = try session.eval([1]) } catch { refusal = error as? HymbaError }
            }
            return .continue
        }
        #expect(refusal?.kind == .invalidArgument && refusal?.message.contains("busy") == true)
    }

    @Test("runtime errors map to the C statuses' kinds")
    func errorKinds() throws {
        let cases: [(Error, HymbaError.Kind)] = [
            (IOError(path: "m", operation: "open", message: "denied"), .io),
            (HymbaFileError.badMagic(path: "m", found: [0]), .format),
            (HymbaFileError.unsupportedVersion(path: "m", found: 9), .unsupported),
            (HymbaFileError.bigEndian(path: "m"), .unsupported),
            (HymbaFileError.chunkChecksum(path: "m", tensor: "t", chunk: 0, offset: 0, expected: 1, found: 2), .checksum),
            (HymbaFileError.headerChecksum(path: "m", expected: 1, found: 2), .checksum),
            (HymbaFileError.truncated(section: "s", offset: 0, needed: 4, what: "w"), .format),
            (ConfigError("unsupported num_experts = 2 (only 1 is supported)"), .unsupported),
            (ConfigError("missing required field hidden_size"), .format),
            (HymbaRuntimeError.tensorShape(name: "t", expected: [1], found: [2]), .format),
            (HymbaRuntimeError.contextOverflow(position: 1, requested: 2, contextLength: 2), .contextFull),
            (HymbaRuntimeError.tokenOutOfVocabulary(token: -1, index: 0, vocabSize: 3), .invalidArgument),
            (HymbaRuntimeError.invalidOption("x"), .invalidArgument),
            (GenerationError.noTokenizer(path: "m"), .unsupported),
            (GenerationError.promptTooLong(tokens: 5, available: 2, contextLength: 4), .contextFull),
            (TokenizerSpecError(field: "vocab", "empty"), .format),
            (CocoaError(.fileReadUnknown), .internal),
        ]
        for (error, kind) in cases {
            let e = HymbaError(classifying: error)
            #expect(e.kind == kind, "\(error)")
            #expect(e.message == "\(error)")
        }
        // Opening: a missing file and bad options.
        #expect(throws: HymbaError(.io, "/nonexistent.hymba: open failed: No such file or directory")) {
            try Model(path: "/nonexistent.hymba")
        }
        #expect(throws: HymbaError.self) { try Model(path: LibHymba.modelPath, options: ModelOptions(threads: -1)) }
        #expect(throws: HymbaError.self) { try LibHymba.model.get().makeSession(SessionOptions(contextLength: 0)) }
    }

    @Test("ModelOptions: threads reaches every session's runtime; out-of-range values and budgets are refused")
    func modelOptions() throws {
        let one = try Model(path: LibHymba.modelPath, options: ModelOptions(threads: 1))
        #expect(try one.makeSession().threads == 1)
        #expect(try LibHymba.model.get().makeSession().threads == HymbaOptions(threads: 0).resolvedThreads)
        #expect(throws: HymbaError(.invalidArgument, "threads 257 must be in 0…256 (0: all cores)")) {
            try Model(path: LibHymba.modelPath, options: ModelOptions(threads: 257))
        }
        // No planner in the runtime yet: a budget is refused, never silently exceeded.
        do {
            _ = try Model(path: LibHymba.modelPath, options: ModelOptions(memoryBudgetBytes: 1 << 30))
            Issue.record("a memory budget was accepted without a planner")
        } catch let e as HymbaError {
            #expect(e.kind == .unsupported && e.message.contains("no memory planner"))
        }
    }

    @Test("tokenize and detokenize round-trip; a bad id is named")
    func tokens() throws {
        let model = try LibHymba.model.get()
        let ids = model.tokenize(LibHymba.prompts[1])
        #expect(ids.first == 1 && model.tokenize(LibHymba.prompts[1], addBOS: false) == Array(ids.dropFirst()))
        #expect(try model.detokenize(ids) == LibHymba.prompts[1])
        #expect(throws: HymbaError(.invalidArgument, "token id 32001 at index 2 is outside the vocabulary 0..<32001")) {
            try model.detokenize([1, 2, 32001])
        }
    }
}
