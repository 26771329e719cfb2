/// Finds stop strings in streamed text that may arrive split across tokens. Text that could
/// still turn out to be the start of a stop string is held back until it cannot; text from a
/// stop string on is never released (llama.cpp's behaviour: the output ends just before it).
///
///     var m = StopStringMatcher(["\n\n"])
///     m.feed("x = 1\n")   // released "x = 1", holding "\n"
///     m.feed("\ny")       // released "", matched "\n\n"
///
/// Works on UTF-8 bytes; a held-back suffix always starts at a stop string's first byte, so
/// released text is always whole characters. Cost per call: O(held bytes × total stop bytes).
public struct StopStringMatcher: Sendable {
    public let stopStrings: [String]
    private let patterns: [[UInt8]]
    private var held: [UInt8] = []
    /// The stop string found, once one is.
    public private(set) var matched: String?

    /// Empty strings are ignored.
    public init(_ stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        patterns = self.stopStrings.map { Array($0.utf8) }
        held.reserveCapacity(64)
    }

    /// Bytes currently held back.
    public var heldCount: Int { held.count }

    /// Adds text; returns the text that is now certain to precede any stop string. After a
    /// match, returns the text before the stop string once and then nothing.
    public mutating func feed(_ text: String) -> String {
        guard matched == nil else { return "" }
        if patterns.isEmpty { return text }
        held.append(contentsOf: text.utf8)
        // The earliest complete occurrence of any stop string (the first listed on a tie).
        var best: (start: Int, index: Int)?
        for (k, p) in patterns.enumerated() {
            if let s = firstOccurrence(of: p), best == nil || s < best!.start { best = (s, k) }
        }
        if let best {
            matched = stopStrings[best.index]
            let out = String(decoding: held[..<best.start], as: UTF8.self)
            held.removeAll()
            return out
        }
        // Hold the longest suffix that is a proper prefix of a stop string.
        var keep = 0
        for p in patterns {
            var len = min(p.count - 1, held.count)
            while len > keep {
                if held[(held.count - len)...].elementsEqual(p[..<len]) { keep = len; break }
                len -= 1
            }
        }
        let release = held.count - keep
        let out = String(decoding: held[..<release], as: UTF8.self)
        held.removeFirst(release)
        return out
    }

    /// The end of the text: releases what was held (nothing after a match).
    public mutating func finish() -> String {
        guard matched == nil else { return "" }
        let out = String(decoding: held, as: UTF8.self)
        held.removeAll()
        return out
    }

    private func firstOccurrence(of p: [UInt8]) -> Int? {
        guard p.count <= held.count else { return nil }
        for s in 0...(held.count - p.count) where held[s] == p[0] {
            if held[s..<(s + p.count)].elementsEqual(p) { return s }
        }
        return nil
    }
}
