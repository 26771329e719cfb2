import Foundation
import HymbaRuntime
import Synchronization

/// What one request asks the scheduler to generate, checked against the model and context.
struct GenerationJob: Sendable {
    var prompt: [Int32]
    /// Tokens to generate at most (the context's room when the request gave none).
    var maxTokens: Int
    var sampling: SamplingParams
    var presencePenalty: Float
    var frequencyPenalty: Float
    var stopStrings: [String]
    var stopTokens: [Int32]
}

/// Why a generation ended, in OpenAI's terms (`finish_reason`).
enum FinishReason: String, Sendable {
    /// An end-of-sequence token or a stop string.
    case stop
    /// `max_tokens` reached, or the context full.
    case length
    /// The client went away (never sent: there is nobody to send it to).
    case cancelled
}

/// The numbers of a finished generation: OpenAI's `usage` and llama-server's `timings`.
struct GenerationSummary: Sendable {
    var reason: FinishReason
    var promptTokens: Int
    var completionTokens: Int
    var prefillSeconds: Double
    /// From the first generated token to the last.
    var decodeSeconds: Double
    /// Tokens generated after the first (the ones `decodeSeconds` covers).
    var decodedTokens: Int
}

/// What the scheduler sends a request's handler, in order: text pieces, then one `finished`.
enum GenerationEvent: Sendable {
    /// Text of newly generated tokens (may be empty while a stop string could be forming).
    case text(String)
    case finished(GenerationSummary)
    /// The model failed mid-generation (an internal error; the slot is freed).
    case failed(String)
}

/// A request's place in the scheduler: the events it receives and its cancellation flag.
/// `cancel()` (the client disconnected) takes effect before the slot's next token.
final class GenerationTicket: Sendable {
    let job: GenerationJob
    let events: AsyncStream<GenerationEvent>
    let continuation: AsyncStream<GenerationEvent>.Continuation
    private let cancelled = Atomic<Bool>(false)
    /// When the request arrived (for the time spent queued).
    let arrival = DispatchTime.now()

    init(job: GenerationJob) {
        self.job = job
        (events, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}
