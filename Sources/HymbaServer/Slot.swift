import Dispatch
import HymbaRuntime
import HymbaTokenizer

/// One of the server's sequences: a session over the shared model, and the request it is
/// serving. The scheduler drives it step by step (`prefillStep`, then one token per decoding
/// step), so several slots can advance together; the stop rules are `Generator.generate`'s
/// (end-of-sequence token, stop strings held back while they might form, the token limit,
/// the context), so a request gives the tokens `hymba-edge run` gives.
final class Slot {
    enum Phase: Equatable {
        case idle
        /// Feeding the prompt; `fed` tokens are in the session so far.
        case prefilling(fed: Int)
        /// Holding the sampled `next` token, to be fed by the next decoding step.
        case decoding(next: Int32)
    }

    let index: Int
    let session: HymbaSession
    let model: TextModel
    private(set) var phase = Phase.idle
    private(set) var ticket: GenerationTicket?

    private var sampler: Sampler?
    private var decoder: ContinuationDecoder?
    private var matcher = StopStringMatcher([])
    private var generated = 0
    /// Times each token was generated (the presence and frequency penalties).
    private var counts: [Int32: Int] = [:]
    /// The logits with the penalties applied (only when a request asks for them).    [V]
    private var penalized: [Float]
    private var prefillStart: UInt64 = 0
    private var summary = GenerationSummary(reason: .length, promptTokens: 0, completionTokens: 0,
                                            prefillSeconds: 0, decodeSeconds: 0, decodedTokens: 0)
    private var firstTokenTime: UInt64 = 0

    /// Slot `index`; the slots after the first run on `first`'s threads (the scheduler uses
    /// one slot's session at a time).
    init(index: Int, model: TextModel, options: HymbaOptions, sharingThreadsWith first: Slot? = nil) throws {
        self.index = index
        self.model = model
        if let first {
            session = try HymbaSession(model: model.model, options: options, sharingThreadsWith: first.session)
        } else {
            session = try HymbaSession(model: model.model, options: options)
        }
        penalized = []
    }

    var isIdle: Bool { phase == .idle }
    var isPrefilling: Bool { if case .prefilling = phase { return true } else { return false } }
    var pendingToken: Int32? { if case let .decoding(next) = phase { return next } else { return nil } }

    /// Takes `ticket`'s request: a fresh session, sampler and text state.
    func start(_ ticket: GenerationTicket) throws {
        let job = ticket.job
        let sampler = try Sampler(params: job.sampling, vocabularySize: model.config.vocabSize)
        for t in job.prompt.suffix(job.sampling.repeatWindow) { sampler.accept(t) }
        session.reset()
        self.ticket = ticket
        self.sampler = sampler
        decoder = ContinuationDecoder(tokenizer: model.tokenizer, context: job.prompt)
        matcher = StopStringMatcher(job.stopStrings)
        generated = 0
        counts.removeAll(keepingCapacity: true)
        if (job.presencePenalty != 0 || job.frequencyPenalty != 0) && penalized.isEmpty {
            penalized = [Float](repeating: 0, count: model.config.vocabSize)
        }
        summary = GenerationSummary(reason: .length, promptTokens: job.prompt.count, completionTokens: 0,
                                    prefillSeconds: 0, decodeSeconds: 0, decodedTokens: 0)
        prefillStart = DispatchTime.now().uptimeNanoseconds
        phase = .prefilling(fed: 0)
    }

    /// Feeds the next chunk of the prompt (at most `session.options.prefillChunk` tokens, the
    /// chunks `prefill` itself would make); after the last one, samples the first token.
    /// Returns the slot's finish, if the request ended.
    func prefillStep() throws -> GenerationSummary? {
        guard case let .prefilling(fed) = phase, let ticket else { return nil }
        let prompt = ticket.job.prompt
        let n = min(session.options.prefillChunk, prompt.count - fed)
        try session.prefill(tokens: prompt[fed..<(fed + n)].map(Int.init))
        if fed + n < prompt.count {
            phase = .prefilling(fed: fed + n)
            return nil
        }
        let token = try sample()
        firstTokenTime = DispatchTime.now().uptimeNanoseconds
        summary.prefillSeconds = Double(firstTokenTime - prefillStart) / 1e9
        return accept(token)
    }

    /// After a decoding step fed `pendingToken`: samples the next token from the new logits.
    func decodeStepDone() throws -> GenerationSummary? {
        let token = try sample()
        summary.decodedTokens += 1
        summary.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - firstTokenTime) / 1e9
        return accept(token)
    }

    /// Ends the request early (the client went away, or the model failed): nothing more is sent
    /// but a `failed` event when `error` is given.
    func abandon(error: String?) {
        if let error { ticket?.continuation.yield(.failed(error)) }
        ticket?.continuation.finish()
        release()
    }

    private func sample() throws -> Int32 {
        guard let sampler, let job = ticket?.job else { return 0 }
        guard !counts.isEmpty, job.presencePenalty != 0 || job.frequencyPenalty != 0 else {
            return try sampler.sample(session.logits)
        }
        // OpenAI's penalties: logit − count · frequency_penalty − (count > 0) · presence_penalty,
        // over the tokens generated so far.
        let logits = session.logits
        for i in 0..<logits.count { penalized[i] = logits[i] }
        for (token, count) in counts {
            penalized[Int(token)] -= Float(count) * job.frequencyPenalty + job.presencePenalty
        }
        return try penalized.withUnsafeBufferPointer { try sampler.sample($0) }
    }

    /// The stop rules of `Generator.generate` for a sampled token; returns the summary when the
    /// request is finished (its last events sent), else holds the token for the next step.
    private func accept(_ token: Int32) -> GenerationSummary? {
        guard let ticket, let sampler, var decoder else { return nil }
        let job = ticket.job
        generated += 1
        sampler.accept(token)
        counts[token, default: 0] += 1
        summary.completionTokens = generated
        if job.stopTokens.contains(token) { return finish(.stop, decoder: &decoder) }
        let piece = matcher.feed(decoder.push(token))
        self.decoder = decoder
        if !piece.isEmpty { ticket.continuation.yield(.text(piece)) }
        if matcher.matched != nil { return finish(.stop, decoder: &decoder) }
        if generated >= job.maxTokens || session.position >= session.contextLength { return finish(.length, decoder: &decoder) }
        phase = .decoding(next: token)
        return nil
    }

    private func finish(_ reason: FinishReason, decoder: inout ContinuationDecoder) -> GenerationSummary {
        // Release what was held back (nothing after a stop string).
        if matcher.matched == nil {
            let tail = matcher.feed(decoder.finish()) + matcher.finish()
            if !tail.isEmpty { ticket?.continuation.yield(.text(tail)) }
        }
        summary.reason = reason
        let done = summary
        ticket?.continuation.yield(.finished(done))
        ticket?.continuation.finish()
        release()
        return done
    }

    private func release() {
        ticket = nil
        sampler = nil
        decoder = nil
        phase = .idle
    }
}
