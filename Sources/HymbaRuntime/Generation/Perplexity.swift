import Foundation

/// The result of scoring a token sequence.
public struct PerplexityResult: Sendable, Equatable {
    /// Tokens scored (each window of n tokens gives n − 1 predictions).
    public var predictions: Int
    /// Windows run.
    public var windows: Int
    /// Mean over predictions of −ln p(token | the tokens before it in its window).
    public var meanNLL: Double
    public var perplexity: Double { exp(meanNLL) }
}

/// Perplexity of a model on a token sequence, in windows: the sequence is cut into
/// consecutive windows of `window` tokens (the last may be shorter), each run from a fresh
/// session state; every token but a window's first is predicted from the tokens before it in
/// its window. With the whole sequence in one window this is what NVIDIA's code computes in
/// one forward pass (tiny-code-hymba `eval.json`).
///
/// Memory: one buffer of `prefillChunk` × vocabulary logits (the windows are fed a chunk at a
/// time). Cost: one prefill of every token, plus a log-sum-exp over the vocabulary per token.
public enum Perplexity {
    /// Scores `tokens` with `session` (which is reset for each window). `window` must be in
    /// 2…session.contextLength. `progress(done, total)` is called after each chunk with
    /// tokens processed so far.
    public static func evaluate(tokens: [Int32], session: HymbaSession, window: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        guard window >= 2, window <= session.contextLength else {
            throw HymbaRuntimeError.invalidOption("perplexity window \(window) must be in 2…\(session.contextLength) (the session's context length)")
        }
        guard tokens.count >= 2 else {
            throw HymbaRuntimeError.invalidOption("perplexity needs at least 2 tokens, got \(tokens.count)")
        }
        let V = session.model.config.vocabSize
        let chunk = session.options.prefillChunk
        var logits = [Float](repeating: 0, count: chunk * V)
        var total: Double = 0
        var predictions = 0, windows = 0, done = 0
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + window)
            session.reset()
            windows += 1
            var p = start
            while p < end {
                let n = min(chunk, end - p)
                let ids = tokens[p..<(p + n)].map(Int.init)
                try logits.withUnsafeMutableBufferPointer { buf in
                    try session.prefill(tokens: ids, allLogits: buf)
                    // Row i predicts token p + i + 1, when that token is in this window.
                    for i in 0..<n where p + i + 1 < end {
                        total += negativeLogLikelihood(UnsafeBufferPointer(rebasing: buf[(i * V)..<((i + 1) * V)]),
                                                       target: Int(tokens[p + i + 1]))
                        predictions += 1
                    }
                }
                p += n
                done += n
                progress?(done, tokens.count)
            }
            start = end
        }
        guard predictions > 0 else {
            throw HymbaRuntimeError.invalidOption("no token could be scored (every window holds a single token)")
        }
        return PerplexityResult(predictions: predictions, windows: windows, meanNLL: total / Double(predictions))
    }

    /// −ln softmax(row)[target] = log Σ exp(l − max) − (l_target − max), summed in Double.
    static func negativeLogLikelihood(_ row: UnsafeBufferPointer<Float>, target: Int) -> Double {
        var m = -Float.infinity
        for v in row { m = max(m, v) }
        var sum: Double = 0
        for v in row { sum += Foundation.exp(Double(v - m)) }
        return log(sum) - Double(row[target] - m)
    }
}
