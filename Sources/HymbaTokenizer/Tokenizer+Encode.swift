import HymbaFormat

/// Finds added tokens in raw UTF-8 text as HF's `AddedVocabulary` does (an Aho-Corasick
/// automaton in leftmost-longest mode): the match that starts first wins, the longest of
/// those starting there. Matching bytes equals matching characters since UTF-8 is
/// self-synchronizing.
struct AddedTokenMatcher: Sendable {
    private let tokens: [[UInt8]]
    private let ids: [Int32]
    /// For each first byte, indices into `tokens`, longest first.
    private let byFirstByte: [[Int]]

    init(_ entries: [([UInt8], Int32)]) {
        let sorted = entries.filter { !$0.0.isEmpty }.sorted { $0.0.count > $1.0.count }
        tokens = sorted.map(\.0)
        ids = sorted.map(\.1)
        var table = [[Int]](repeating: [], count: 256)
        for (i, t) in tokens.enumerated() { table[Int(t[0])].append(i) }
        byFirstByte = table
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The token matching `text` at `offset`, as (id, byte length).
    @inline(__always)
    func match(_ text: UnsafeBufferPointer<UInt8>, at offset: Int) -> (id: Int32, length: Int)? {
        let candidates = byFirstByte[Int(text[offset])]
        if candidates.isEmpty { return nil }
        let remaining = text.count - offset
        for i in candidates {
            let t = tokens[i]
            if t.count <= remaining && t.withUnsafeBufferPointer({ memEqual($0, text, offset) }) {
                return (ids[i], t.count)
            }
        }
        return nil
    }

    @inline(__always) private func memEqual(_ token: UnsafeBufferPointer<UInt8>, _ text: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Bool {
        for k in 0..<token.count where token[k] != text[offset + k] { return false }
        return true
    }
}

/// A normalizer step over Unicode scalar values.
enum ScalarNormalizerStep: Sendable {
    case prepend([UInt32])
    /// A one-scalar pattern replaced by one scalar: done in place.
    case replaceScalar(UInt32, UInt32)
    case replace(pattern: [UInt32], content: [UInt32])

    init(_ step: TokenizerSpec.NormalizerStep) {
        switch step {
        case .prepend(let s):
            self = .prepend(s.unicodeScalars.map(\.value))
        case let .replace(p, c):
            let pattern = p.unicodeScalars.map(\.value), content = c.unicodeScalars.map(\.value)
            self = pattern.count == 1 && content.count == 1 ? .replaceScalar(pattern[0], content[0]) : .replace(pattern: pattern, content: content)
        }
    }
}

/// Buffers reused across the segments of one `encode` call.
struct EncodeScratch {
    var scalars: [UInt32] = []
    var symbols: [Int32] = []
    var merger = BytePairMerger()
}

extension Tokenizer {
    /// Token ids for `text`. `addBOS` / `addEOS` default to the spec's `add_bos` / `add_eos`
    /// (Hymba: BOS yes, EOS no); they add nothing when the spec has no such token.
    /// Text equal to an added token (`<s>`, `</s>`, `[PAD]`, `<unk>`) becomes that token, as in
    /// Hugging Face. Cost: linear in the text for ordinary text, O(n log n) at worst.
    public func encode(_ text: String, addBOS: Bool? = nil, addEOS: Bool? = nil) -> [Int32] {
        var out = [Int32]()
        out.reserveCapacity(text.utf8.count / 3 + 4)
        if addBOS ?? spec.addBOS, let bos = spec.bosID { out.append(bos) }
        var scratch = EncodeScratch()
        var text = text
        text.withUTF8 { bytes in
            var segmentStart = 0
            var i = 0
            if !addedTokens.isEmpty {
                while i < bytes.count {
                    if let m = addedTokens.match(bytes, at: i) {
                        encodeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]), into: &out, scratch: &scratch)
                        out.append(m.id)
                        i += m.length
                        segmentStart = i
                    } else {
                        i += 1
                    }
                }
            }
            encodeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart...]), into: &out, scratch: &scratch)
        }
        if addEOS ?? spec.addEOS, let eos = spec.eosID { out.append(eos) }
        return out
    }

    /// Normalizes one segment between added tokens and runs the BPE model on it.
    private func encodeSegment(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout EncodeScratch) {
        if bytes.isEmpty { return }  // HF's normalizers leave empty text empty; nothing to encode
        decodeScalars(bytes, into: &scratch.scalars)
        for step in normalizerSteps {
            switch step {
            case .prepend(let s):
                if !scratch.scalars.isEmpty { scratch.scalars.insert(contentsOf: s, at: 0) }
            case let .replaceScalar(from, to):
                scratch.scalars.withUnsafeMutableBufferPointer { buf in
                    for k in buf.indices where buf[k] == from { buf[k] = to }
                }
            case let .replace(pattern, content):
                scratch.scalars = replacingAll(pattern, with: content, in: scratch.scalars)
            }
        }
        let scalars = scratch.scalars
        scalars.withUnsafeBufferPointer { s in
            modelEncode(s, into: &out, symbols: &scratch.symbols, merger: &scratch.merger)
        }
    }

    /// HF's `BPE::merge_word` (initial symbols) then `merge_all`, on one normalized segment.
    /// The segment is cut at `splitScalar` boundaries when that is safe (see `init`).
    private func modelEncode(_ s: UnsafeBufferPointer<UInt32>, into out: inout [Int32], symbols: inout [Int32], merger: inout BytePairMerger) {
        symbols.removeAll(keepingCapacity: true)
        let split = splitScalar ?? UInt32.max
        let unk = spec.unkID
        var pendingUnk = false
        var utf8 = (UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        bmpCharIDs.withUnsafeBufferPointer { bmp in
            for i in 0..<s.count {
                let c = s[i]
                if c == split && i > 0 && s[i - 1] != split {
                    if pendingUnk, let unk { symbols.append(unk); pendingUnk = false }
                    merger.merge(&symbols, table: mergeTable, into: &out)
                    symbols.removeAll(keepingCapacity: true)
                }
                let id = c < 0x10000 ? bmp[Int(c)] : (astralCharIDs[c] ?? -1)
                if id >= 0 {
                    if pendingUnk, let unk { symbols.append(unk); pendingUnk = false }
                    symbols.append(id)
                    continue
                }
                if spec.byteFallback {
                    // All of the character's bytes must have tokens. Like HF, this path does
                    // not flush a pending unk first: the unk lands after these bytes.
                    let n = withUnsafeMutableBytes(of: &utf8) { encodeUTF8(c, $0) }
                    let found = withUnsafeBytes(of: utf8) { b in (0..<n).allSatisfy { byteIDs[Int(b[$0])] >= 0 } }
                    if found {
                        withUnsafeBytes(of: utf8) { b in for k in 0..<n { symbols.append(byteIDs[Int(b[k])]) } }
                        continue
                    }
                }
                guard let unk else { continue }  // no unk token: HF drops the character
                if pendingUnk {
                    if !spec.fuseUnk { symbols.append(unk) }
                } else {
                    pendingUnk = true
                }
            }
        }
        if pendingUnk, let unk { symbols.append(unk) }
        merger.merge(&symbols, table: mergeTable, into: &out)
    }
}

/// Decodes valid UTF-8 (it comes from a `String`) into scalar values.
private func decodeScalars(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt32]) {
    out.removeAll(keepingCapacity: true)
    out.reserveCapacity(bytes.count + 1)
    var i = 0
    let n = bytes.count
    while i < n {
        let b0 = UInt32(bytes[i])
        if b0 < 0x80 {
            out.append(b0); i += 1
        } else if b0 < 0xE0 {
            out.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)); i += 2
        } else if b0 < 0xF0 {
            out.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)); i += 3
        } else {
            out.append((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F)); i += 4
        }
    }
}

/// Writes the UTF-8 bytes of a scalar value; returns their count.
@inline(__always)
private func encodeUTF8(_ v: UInt32, _ out: UnsafeMutableRawBufferPointer) -> Int {
    switch v {
    case 0..<0x80:
        out[0] = UInt8(v); return 1
    case 0x80..<0x800:
        out[0] = UInt8(0xC0 | v >> 6); out[1] = UInt8(0x80 | v & 0x3F); return 2
    case 0x800..<0x10000:
        out[0] = UInt8(0xE0 | v >> 12); out[1] = UInt8(0x80 | v >> 6 & 0x3F); out[2] = UInt8(0x80 | v & 0x3F); return 3
    default:
        out[0] = UInt8(0xF0 | v >> 18); out[1] = UInt8(0x80 | v >> 12 & 0x3F)
        out[2] = UInt8(0x80 | v >> 6 & 0x3F); out[3] = UInt8(0x80 | v & 0x3F); return 4
    }
}
