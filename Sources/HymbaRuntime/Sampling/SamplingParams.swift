/// How the next token is chosen from the logits. The defaults are llama.cpp's.
///
/// Filters run in llama.cpp's order, on the logits after the repetition penalty:
/// top-k → top-p → min-p → temperature → draw. Top-p and min-p are measured on the distribution
/// at temperature 1 over the top-k survivors, so they do not move with the temperature.
/// `temperature <= 0` means greedy: the highest logit after the repetition penalty (the lowest
/// id among equal ones), no random draw.
public struct SamplingParams: Sendable, Equatable {
    /// Divides the logits before the draw; ≤ 0 is greedy.
    public var temperature: Float
    /// Keep the k highest logits; ≤ 0 keeps all.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least p; ≥ 1 keeps all.
    public var topP: Float
    /// Drop tokens less likely than `minP` × the most likely one's probability; ≤ 0 keeps all.
    public var minP: Float
    /// Penalty on tokens seen in the last `repeatWindow` tokens (prompt included): positive
    /// logits are divided by it, negative ones multiplied (llama.cpp / CTRL). 1 disables it.
    public var repeatPenalty: Float
    /// How many of the most recent tokens the repetition penalty looks at.
    public var repeatWindow: Int
    /// Seed of the random draw: the same seed, model and inputs give the same tokens.
    public var seed: UInt64

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1.0, repeatWindow: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatWindow = repeatWindow
        self.seed = seed
    }

    /// Argmax decoding: no filters, no penalty, no randomness.
    public static let greedy = SamplingParams(temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1)

    public var isGreedy: Bool { temperature <= 0 }

    /// Throws `HymbaRuntimeError.invalidOption` naming the first value out of range.
    public func validate() throws {
        func bad(_ s: String) -> HymbaRuntimeError { .invalidOption("sampling: \(s)") }
        guard temperature.isFinite else { throw bad("temperature \(temperature) must be a finite number") }
        guard topP.isFinite, topP > 0 else { throw bad("top-p \(topP) must be in (0, 1] (1 disables it)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min-p \(minP) must be in [0, 1] (0 disables it)") }
        guard repeatPenalty.isFinite, repeatPenalty > 0 else { throw bad("repeat penalty \(repeatPenalty) must be > 0 (1 disables it)") }
        guard repeatWindow >= 0 else { throw bad("repeat window \(repeatWindow) must be ≥ 0") }
    }
}
