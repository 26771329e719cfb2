import Foundation
import HymbaFormat

/// A saved state or snapshot that cannot be used: one line naming where it came from and
/// what is wrong (expected vs found). The session it was offered to is left unchanged.
public struct StateFileError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Not a state file, truncated, or a field out of place or range.
        case format
        /// A checksum does not match: the bytes were damaged.
        case checksum
        /// A valid state of another model, context length or KV type, a future version, or
        /// a snapshot of another sequence.
        case mismatch
    }
    /// The file path, or a description of the buffer.
    public var source: String
    public var message: String
    public var kind: Kind
    public init(_ source: String, _ message: String, kind: Kind = .format) {
        self.source = source
        self.message = message
        self.kind = kind
    }
    public var description: String { "state \(source): \(message)" }
}

/// A point in a session's sequence it can return to later (`HymbaSession.rewind(to:)`): what
/// later positions overwrite (the SSM and conv states, the sliding windows' last rows), taken
/// at `position`. Only valid for the same sequence: it records a hash of the tokens before it.
public struct SessionSnapshot: Sendable, Equatable {
    /// Regular tokens fed when it was taken.
    public let position: Int
    /// XXH64 of those tokens (u32 little-endian each).
    let tokensHash: UInt64
    /// Each sequence cache's `snapshot`, in the session's order.
    let bytes: [UInt8]

    /// Bytes it holds.
    public var byteCount: Int { bytes.count }
}

/// What a saved state carries besides the session's state.
public struct SavedStateExtras: Sendable, Equatable {
    /// Snapshots of the same sequence at earlier positions (prompt caches), by position.
    public var snapshots: [SessionSnapshot]
    /// Bytes the application stores with the state (a chat transcript); nil: none.
    public var text: [UInt8]?

    public init(snapshots: [SessionSnapshot] = [], text: [UInt8]? = nil) {
        self.snapshots = snapshots
        self.text = text
    }
}

/// The byte layout of a saved state (formats/HYMBA-STATE.md).
enum StateLayout {
    static let magic = Array("HYMBASTA".utf8)
    static let version: UInt32 = 1
    static let byteOrderMark: UInt32 = 0x0A0B_0C0D
    static let headerSize = 80
    static let sectionHeaderSize = 24
    /// The most snapshots a state file may carry.
    static let maximumSnapshots = 64

    enum Tag: String, CaseIterable {
        case tokens = "TOKS", kv = "KVC ", recurrent = "SSM ", snapshot = "SNAP", text = "TEXT"
        var code: UInt32 { Array(rawValue.utf8).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
        init?(code: UInt32) {
            guard let t = Tag.allCases.first(where: { $0.code == code }) else { return nil }
            self = t
        }
    }

    static func kvTypeCode(_ t: KVType) -> UInt32 {
        switch t { case .f32: return 0; case .f16: return 1; case .q8: return 2 }
    }

    static func kvType(code: UInt32) -> KVType? {
        switch code { case 0: return .f32; case 1: return .f16; case 2: return .q8; default: return nil }
    }

    static func tokensHash(_ tokens: ArraySlice<Int>) -> UInt64 {
        var words = [UInt32]()
        words.reserveCapacity(tokens.count)
        for t in tokens { words.append(UInt32(truncatingIfNeeded: t).littleEndian) }
        return words.withUnsafeBytes { XXHash64.hash($0) }
    }
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) { Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) } }

    /// Appends a section: tag, reserved, payload length, payload checksum, then the payload
    /// `body` appends.
    mutating func appendSection(_ tag: StateLayout.Tag, _ body: (inout [UInt8]) -> Void) {
        let start = count
        appendLE(tag.code)
        appendLE(UInt32(0))
        appendLE(UInt64(0))
        appendLE(UInt64(0))
        let payloadStart = count
        body(&self)
        let length = count - payloadStart
        let sum = withUnsafeBytes { XXHash64.hash($0.baseAddress! + payloadStart, count: length) }
        withUnsafeMutableBytes {
            $0.storeBytes(of: UInt64(length).littleEndian, toByteOffset: start + 8, as: UInt64.self)
            $0.storeBytes(of: sum.littleEndian, toByteOffset: start + 16, as: UInt64.self)
        }
    }
}

extension HymbaSession {
    // MARK: Snapshots

    /// A snapshot at the current position (bytes: `snapshotBytes`).
    public func takeSnapshot() -> SessionSnapshot {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(snapshotBytes(position: position))
        for c in sequenceCaches { c.snapshot(position: position, into: &bytes) }
        return SessionSnapshot(position: position, tokensHash: StateLayout.tokensHash(tokens[...]), bytes: bytes)
    }

    /// Bytes of a snapshot at `position` tokens (the planner counts prompt-cache snapshots with it).
    public func snapshotBytes(position p: Int) -> Int { sequenceCaches.reduce(0) { $0 + $1.snapshotBytes(position: p) } }

    /// Returns to `snapshot`'s position: the session must hold the same tokens up to it (it was
    /// taken from this sequence, or from a saved state this session restored) and be at that
    /// position or later. Throws, changing nothing, otherwise.
    public func rewind(to snapshot: SessionSnapshot) throws {
        let p = snapshot.position
        guard p <= position else {
            throw StateFileError("snapshot", "taken at position \(p), the session is at \(position)", kind: .mismatch)
        }
        guard StateLayout.tokensHash(tokens[..<p]) == snapshot.tokensHash else {
            throw StateFileError("snapshot", "taken from another sequence (its first \(p) tokens differ)", kind: .mismatch)
        }
        guard snapshot.bytes.count == snapshotBytes(position: p) else {
            throw StateFileError("snapshot", "holds \(snapshot.bytes.count) bytes, a snapshot at position \(p) has \(snapshotBytes(position: p))")
        }
        snapshot.bytes.withUnsafeBytes { raw in
            var offset = 0
            for c in sequenceCaches {
                c.restoreSnapshot(position: p, from: raw.baseAddress! + offset)
                offset += c.snapshotBytes(position: p)
            }
        }
        restored(position: p, tokens: Array(tokens[..<p]))
    }

    // MARK: Saving

    /// The session's state (formats/HYMBA-STATE.md): the tokens, the rows and states later
    /// tokens can read, `extras`' snapshots and text. The meta prefix is not included (the model's).
    public func encodedState(_ extras: SavedStateExtras = SavedStateExtras()) -> [UInt8] {
        let identity = model.identity
        var out: [UInt8] = []
        out.reserveCapacity(StateLayout.headerSize + 4 * position + sequenceCaches.reduce(0) { $0 + $1.savedBytes(position: position) }
            + extras.snapshots.reduce(0) { $0 + $1.bytes.count } + (extras.text?.count ?? 0) + 1024)
        out.append(contentsOf: StateLayout.magic)
        out.appendLE(StateLayout.version)
        out.appendLE(StateLayout.byteOrderMark)
        out.appendLE(identity.fileBytes)
        out.appendLE(identity.checksum)
        out.appendLE(identity.configHash)
        out.appendLE(UInt32(contextLength))
        out.appendLE(StateLayout.kvTypeCode(options.kvType))
        out.appendLE(UInt64(position))
        let sections = 1 + sequenceCaches.count + extras.snapshots.count + (extras.text == nil ? 0 : 1)
        out.appendLE(UInt32(sections))
        out.appendLE(UInt32(0))
        out.appendLE(UInt64(0))
        out.appendLE(out.withUnsafeBytes { XXHash64.hash($0.baseAddress!, count: 72) })

        out.appendSection(.tokens) { b in for t in tokens { b.appendLE(UInt32(t)) } }
        for c in sequenceCaches {
            let range = c.savedPositions(position: position)
            if c is RecurrentState {
                out.appendSection(.recurrent) { b in
                    b.appendLE(UInt32(c.layer)); b.appendLE(UInt32(0))
                    c.save(position: position, into: &b)
                }
            } else {
                out.appendSection(.kv) { b in
                    b.appendLE(UInt32(c.layer)); b.appendLE(UInt32((c as? SlidingWindowKVCache)?.window ?? 0))
                    b.appendLE(UInt64(range.lowerBound)); b.appendLE(UInt64(range.count))
                    c.save(position: position, into: &b)
                }
            }
        }
        for s in extras.snapshots {
            out.appendSection(.snapshot) { b in
                b.appendLE(UInt64(s.position))
                b.append(contentsOf: s.bytes)
            }
        }
        if let text = extras.text { out.appendSection(.text) { $0.append(contentsOf: text) } }
        return out
    }

    /// Writes `encodedState(extras)` to `path` atomically (a temporary file renamed over it: a
    /// crash during the save leaves the old file).
    public func saveState(to path: String, _ extras: SavedStateExtras = SavedStateExtras()) throws {
        let bytes = encodedState(extras)
        try bytes.withUnsafeBytes { try AtomicFileWrite.write($0, to: path) }
    }

    // MARK: Restoring

    /// Restores a state `encodedState` wrote, from the session's start (meta prefix) plus the
    /// saved rows and states; returns its extras. Everything is checked first, the extras by
    /// `accept` too (the caller's part, e.g. its text): on any error (`StateFileError`, one
    /// line naming `source`, or what `accept` throws) the session is unchanged.
    @discardableResult
    public func restoreState(from bytes: UnsafeRawBufferPointer, source: String,
                             accept: (SavedStateExtras) throws -> Void = { _ in }) throws -> SavedStateExtras {
        let parsed = try parseState(bytes, source: source)
        try accept(parsed.extras)
        reset()
        let base = bytes.baseAddress!
        for (c, offset) in zip(sequenceCaches, parsed.cacheOffsets) {
            c.restore(position: parsed.position, from: base + offset)
        }
        restored(position: parsed.position, tokens: parsed.tokens)
        return parsed.extras
    }

    /// Reads and restores the state file at `path` (as `restoreState(from:source:accept:)`).
    @discardableResult
    public func loadState(from path: String, accept: (SavedStateExtras) throws -> Void = { _ in }) throws -> SavedStateExtras {
        let file = try MappedFile(path: path)
        return try restoreState(from: UnsafeRawBufferPointer(start: file.base, count: file.count), source: path, accept: accept)
    }

    private struct ParsedState {
        var position: Int
        var tokens: [Int]
        /// Where each sequence cache's saved bytes start.
        var cacheOffsets: [Int]
        var extras: SavedStateExtras
    }

    /// Checks every field and checksum of a saved state against this session; nothing changes.
    private func parseState(_ buffer: UnsafeRawBufferPointer, source: String) throws -> ParsedState {
        func fail(_ m: String, _ kind: StateFileError.Kind = .format) -> StateFileError { StateFileError(source, m, kind: kind) }
        let n = buffer.count
        guard n >= StateLayout.headerSize, let base = buffer.baseAddress else {
            throw fail("\(n) bytes, shorter than the \(StateLayout.headerSize)-byte header (truncated or not a state file)")
        }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == StateLayout.magic else {
            throw fail("not a Hymba state file (magic is not HYMBASTA)")
        }
        guard u32(12) == StateLayout.byteOrderMark else { throw fail("byte-order mark at offset 12 is \(String(u32(12), radix: 16)), expected a0b0c0d (little-endian)") }
        guard u32(8) == StateLayout.version else { throw fail("version \(u32(8)), this build reads version \(StateLayout.version)", .mismatch) }
        let headerSum = XXHash64.hash(base, count: 72)
        guard u64(72) == headerSum else { throw fail("header checksum mismatch (stored \(String(u64(72), radix: 16)), computed \(String(headerSum, radix: 16)))", .checksum) }
        let identity = model.identity
        let saved = ModelIdentity(fileBytes: u64(16), checksum: u64(24), configHash: u64(32))
        guard saved.configHash == identity.configHash else { throw fail("saved for another model config (config hash \(String(saved.configHash, radix: 16)), this model's \(String(identity.configHash, radix: 16)))", .mismatch) }
        guard saved == identity else { throw fail("saved for another model (\(saved)); this one is \(identity)", .mismatch) }
        guard Int(u32(40)) == contextLength else { throw fail("saved with context length \(u32(40)), this session has \(contextLength)", .mismatch) }
        guard let kv = StateLayout.kvType(code: u32(44)) else { throw fail("KV type code \(u32(44)) is not 0 (f32), 1 (f16) or 2 (q8)") }
        guard kv == options.kvType else { throw fail("saved with \(kv) KV, this session uses \(options.kvType)", .mismatch) }
        let positionField = u64(48)
        guard positionField <= UInt64(contextLength) else { throw fail("position \(positionField) exceeds the context length \(contextLength)") }
        let p = Int(positionField)
        let sectionCount = Int(u32(56))
        let fixedSections = 1 + sequenceCaches.count
        guard sectionCount >= fixedSections, sectionCount <= fixedSections + StateLayout.maximumSnapshots + 1 else {
            throw fail("\(sectionCount) sections; this model's state has \(fixedSections) plus at most \(StateLayout.maximumSnapshots) snapshots and a text")
        }

        var offset = StateLayout.headerSize
        /// The next section's payload (offset, length), checked against its tag and checksum.
        func section(_ index: Int, _ expected: [StateLayout.Tag]) throws -> (tag: StateLayout.Tag, offset: Int, length: Int) {
            guard n - offset >= StateLayout.sectionHeaderSize else {
                throw fail("truncated: section \(index) header at offset \(offset) needs \(StateLayout.sectionHeaderSize) bytes, \(n - offset) left")
            }
            let code = u32(offset)
            guard let tag = StateLayout.Tag(code: code), expected.contains(tag) else {
                let found = StateLayout.Tag(code: code)?.rawValue ?? String(code, radix: 16)
                throw fail("section \(index) at offset \(offset) is '\(found)', expected \(expected.map { "'\($0.rawValue)'" }.joined(separator: " or "))")
            }
            guard u32(offset + 4) == 0 else { throw fail("section \(index) at offset \(offset): reserved field is \(u32(offset + 4)), expected 0") }
            let length = u64(offset + 8)
            guard length <= UInt64(n - offset - StateLayout.sectionHeaderSize) else {
                throw fail("truncated: section \(index) ('\(tag.rawValue)') at offset \(offset) declares \(length) bytes, \(n - offset - StateLayout.sectionHeaderSize) left")
            }
            let start = offset + StateLayout.sectionHeaderSize
            let sum = XXHash64.hash(base + start, count: Int(length))
            guard sum == u64(offset + 16) else {
                throw fail("section \(index) ('\(tag.rawValue)') at offset \(offset): checksum mismatch (stored \(String(u64(offset + 16), radix: 16)), computed \(String(sum, radix: 16)))", .checksum)
            }
            offset = start + Int(length)
            return (tag, start, Int(length))
        }

        // Tokens.
        let toks = try section(0, [.tokens])
        guard toks.length == 4 * p else { throw fail("tokens section holds \(toks.length) bytes, expected \(4 * p) for \(p) tokens") }
        var tokens: [Int] = []
        tokens.reserveCapacity(p)
        for i in 0..<p {
            let t = Int(u32(toks.offset + 4 * i))
            guard t < V else { throw fail("token \(i) is \(t), outside the vocabulary 0..<\(V)") }
            tokens.append(t)
        }
        // The caches, in the session's order.
        var cacheOffsets: [Int] = []
        for (i, c) in sequenceCaches.enumerated() {
            let isRecurrent = c is RecurrentState
            let s = try section(1 + i, [isRecurrent ? .recurrent : .kv])
            let fields = isRecurrent ? 8 : 24
            let expected = fields + c.savedBytes(position: p)
            guard s.length == expected else {
                throw fail("section \(1 + i) (layer \(c.layer) '\(s.tag.rawValue)') holds \(s.length) bytes, expected \(expected)")
            }
            guard Int(u32(s.offset)) == c.layer else { throw fail("section \(1 + i) is for layer \(u32(s.offset)), expected layer \(c.layer)") }
            if !isRecurrent {
                let range = c.savedPositions(position: p)
                let window = (c as? SlidingWindowKVCache)?.window ?? 0
                guard Int(u32(s.offset + 4)) == window, u64(s.offset + 8) == UInt64(range.lowerBound), u64(s.offset + 16) == UInt64(range.count) else {
                    throw fail("layer \(c.layer) KV section: window \(u32(s.offset + 4)), positions \(u64(s.offset + 8)) +\(u64(s.offset + 16)); expected window \(window), positions \(range.lowerBound) +\(range.count)")
                }
            }
            cacheOffsets.append(s.offset + fields)
        }
        // Snapshots, then the text.
        var extras = SavedStateExtras()
        for i in fixedSections..<sectionCount {
            let s = try section(i, extras.text == nil ? [.snapshot, .text] : [])
            if s.tag == .text {
                extras.text = Array(UnsafeRawBufferPointer(start: base + s.offset, count: s.length))
                continue
            }
            guard s.length >= 8 else { throw fail("snapshot section \(i) holds \(s.length) bytes, fewer than its 8-byte position") }
            let sp = u64(s.offset)
            let previous = extras.snapshots.last?.position ?? 0
            guard sp > UInt64(previous), sp <= UInt64(p) else {
                throw fail("snapshot section \(i) is at position \(sp), expected one in \(previous + 1)…\(p) (increasing, within the state)")
            }
            let expected = 8 + snapshotBytes(position: Int(sp))
            guard s.length == expected else { throw fail("snapshot section \(i) at position \(sp) holds \(s.length) bytes, expected \(expected)") }
            extras.snapshots.append(SessionSnapshot(position: Int(sp), tokensHash: StateLayout.tokensHash(tokens[..<Int(sp)]),
                                                    bytes: Array(UnsafeRawBufferPointer(start: base + s.offset + 8, count: s.length - 8))))
        }
        guard offset == n else { throw fail("\(n - offset) bytes after the last section (offset \(offset))") }
        return ParsedState(position: p, tokens: tokens, cacheOffsets: cacheOffsets, extras: extras)
    }
}
