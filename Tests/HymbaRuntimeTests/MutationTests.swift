import Foundation
import HymbaFormat
import Testing
@testable import HymbaRuntime

/// A fixed set of random mutations of small valid model files, each run through open, verify,
/// tokenizer and model load and a short evaluation (`HostileFiles.exercise`). Every mutant must
/// end in a clean thrown error or a result; a mutant the checksums cannot see (padding) must
/// give exactly the unmutated file's logits. Mutants whose checksums were recomputed after the
/// edit ("resigned") test the validation behind the checksums: they must be refused or run, never
/// crash. Run once under AddressSanitizer too (SECURITY.md), which turns any read past the end
/// of the in-memory file into a report.
@Suite struct MutationTests {
    struct Tally: CustomStringConvertible {
        var refused = 0, flagged = 0, identical = 0, changed = 0
        var slowest = 0.0
        var total: Int { refused + flagged + identical + changed }
        var description: String { "\(total) mutants: \(refused) refused, \(flagged) flagged by verify, \(identical) ran identical, \(changed) ran with other logits (resigned edits); slowest \(String(format: "%.3f", slowest)) s" }
    }

    /// Runs `mutant`; `resigned` mutants may legitimately change the logits, raw ones may not.
    static func check(_ mutant: [UInt8], baseline: [Float], resigned: Bool, what: @autoclosure () -> String,
                      into tallies: inout [String: Tally], family: String) {
        var tally = tallies[family] ?? Tally()
        defer { tallies[family] = tally }
        let t0 = Date()
        let outcome = HostileFiles.exercise(mutant, verifyChecksums: !resigned)
        tally.slowest = max(tally.slowest, Date().timeIntervalSince(t0))
        switch outcome {
        case .refused(let message):
            tally.refused += 1
            #expect(!message.isEmpty, "\(what()): empty error message")
        case .flagged:
            tally.flagged += 1
        case .ran(let logits):
            if logits == baseline {
                tally.identical += 1
            } else {
                tally.changed += 1
                #expect(resigned, "\(what()): a mutation no checksum caught changed the logits")
            }
        }
    }

    static let seeds: [(name: String, make: () throws -> [UInt8])] = [
        ("zstd, every storage type", { try HostileFiles.seed(codec: .zstd, quant: .q4, keep: [
            ("*.out_proj.weight", .q8), ("*.x_proj.0.weight", .bf16), ("lm_head.weight", .f16)]) }),
        ("none, q8", { try HostileFiles.seed(codec: .none, quant: .q8) }),
        ("lz4, q4", { try HostileFiles.seed(codec: .lz4, quant: .q4, keep: [("*.dt_proj.0.weight", .f16)]) }),
    ]

    @Test func unmutatedSeedsRun() throws {
        for (name, make) in Self.seeds {
            let bytes = try make()
            guard case .ran(let logits) = HostileFiles.exercise(bytes) else {
                Issue.record("\(name): the valid seed does not run: \(HostileFiles.exercise(bytes))"); continue
            }
            #expect(logits.count == HostileFiles.ids.count * 24 && logits.allSatisfy(\.isFinite))
        }
    }

    @Test(arguments: 0..<3)
    func mutants(seedIndex: Int) throws {
        let (name, make) = Self.seeds[seedIndex]
        let original = try make()
        let baseline = try #require(HostileFiles.exercise(original).logits)
        let file = try HostileFiles.layout(original)
        var rng = MutationRandom(seed: 0x5EED_0000 + UInt64(seedIndex))
        var tallies: [String: Tally] = [:]
        var family = ""
        let n = original.count

        // 1. Single bit flips (raw): anywhere (padding flips must change nothing), and inside the
        //    checksummed bytes (header, metadata, chunks, directory), where every one must be caught.
        let h = file.header
        var covered: [Range<Int>] = [0..<(128 + Int(h.metadataLength)), Int(h.directoryOffset)..<n]
        for t in file.tensors { for c in t.chunks { covered.append(Int(c.storedOffset)..<Int(c.storedOffset + c.storedLength)) } }
        family = "1 bit flips anywhere"
        for _ in 0..<200 {
            var m = original
            let at = rng.below(n)
            m[at] ^= UInt8(1 << rng.below(8))
            Self.check(m, baseline: baseline, resigned: false, what: "\(name): bit flip at \(at)", into: &tallies, family: family)
        }
        family = "1 bit flips in checksummed bytes"
        for _ in 0..<400 {
            var m = original
            let range = covered[rng.below(covered.count)]
            let at = range.lowerBound + rng.below(range.count)
            m[at] ^= UInt8(1 << rng.below(8))
            Self.check(m, baseline: baseline, resigned: false, what: "\(name): bit flip at \(at)", into: &tallies, family: family)
        }
        #expect(tallies[family]?.refused == 400, "every flip of a checksummed byte is caught: \(tallies[family]!)")

        // 2. Truncation at every section boundary (and one byte either side); raw, and with the
        //    header's lengths rewritten to the new size and resigned.
        var boundaries = Set<Int>(stride(from: 0, through: 128, by: 4))
        boundaries.formUnion([128 + Int(h.metadataLength), Int(h.dataOffset), Int(h.dataOffset + h.dataLength),
                              Int(h.directoryOffset), n])
        for t in file.tensors { for c in t.chunks { boundaries.formUnion([Int(c.storedOffset), Int(c.storedOffset + c.storedLength)]) } }
        for f in Self.directoryFields(original, file) where f.name.hasSuffix("name_length") || f.name.hasSuffix("chunk_count") {
            boundaries.insert(f.offset)
        }
        for b in boundaries.sorted() {
            for cut in [b - 1, b, b + 1] where cut >= 0 && cut < n {
                family = "2 truncations"
                let m = Array(original[0..<cut])
                Self.check(m, baseline: baseline, resigned: false, what: "\(name): truncated to \(cut)", into: &tallies, family: family)
                if cut >= 128 {
                    family = "2 truncations, header fixed and resigned"
                    var r = m
                    HostileFiles.setU64(&r, 64, UInt64(cut))
                    let dirOff = HostileFiles.u64(r, 32)
                    if dirOff <= UInt64(cut) { HostileFiles.setU64(&r, 40, UInt64(cut) - dirOff) }
                    HostileFiles.resign(&r)
                    Self.check(r, baseline: baseline, resigned: true, what: "\(name): truncated to \(cut), resigned", into: &tallies, family: family)
                }
            }
        }

        // 3. Shuffled chunks: the bytes of two chunks swapped (up to 64 of them, raw), and the
        //    directory entries of two chunks swapped (resigned).
        family = "3 chunk bytes swapped"
        let chunkRefs = file.tensors.indices.flatMap { ti in file.tensors[ti].chunks.indices.map { (ti, $0) } }
        for _ in 0..<60 {
            var m = original
            let (ta, ca) = chunkRefs[rng.below(chunkRefs.count)], (tb, cb) = chunkRefs[rng.below(chunkRefs.count)]
            let x = file.tensors[ta].chunks[ca], y = file.tensors[tb].chunks[cb]
            for i in 0..<min(64, Int(x.storedLength), Int(y.storedLength)) { m.swapAt(Int(x.storedOffset) + i, Int(y.storedOffset) + i) }
            Self.check(m, baseline: baseline, resigned: false, what: "\(name): bytes of chunks \(ta).\(ca) and \(tb).\(cb) swapped", into: &tallies, family: family)
        }
        family = "3 chunks swapped in the directory (resigned)"
        for _ in 0..<60 {
            var tensors = file.tensors
            let (ta, ca) = chunkRefs[rng.below(chunkRefs.count)], (tb, cb) = chunkRefs[rng.below(chunkRefs.count)]
            let x = tensors[ta].chunks[ca], y = tensors[tb].chunks[cb]
            for (t, c, from) in [(ta, ca, y), (tb, cb, x)] {
                tensors[t].chunks[c].storedOffset = from.storedOffset
                tensors[t].chunks[c].storedLength = from.storedLength
                tensors[t].chunks[c].codec = from.codec
                tensors[t].chunks[c].checksum = from.checksum
            }
            for t in [ta, tb] {
                tensors[t].dataOffset = tensors[t].chunks[0].storedOffset
                tensors[t].dataLength = tensors[t].chunks.map { $0.storedOffset + $0.storedLength }.max()! - tensors[t].dataOffset
            }
            Self.check(try HostileFiles.withDirectory(original, tensors), baseline: baseline, resigned: true,
                       what: "\(name): chunks \(ta).\(ca) and \(tb).\(cb) swapped", into: &tallies, family: family)
        }
        // Whole tensors' directory entries in another order (the same tensors: must run identically).
        var reversed = file.tensors
        reversed.reverse()
        Self.check(try HostileFiles.withDirectory(original, reversed), baseline: baseline, resigned: false,
                   what: "\(name): directory entries reversed", into: &tallies, family: family)

        // 4. Inflated sizes and counts in the header and the directory (resigned).
        func values(_ v: UInt64, width: Int) -> [UInt64] {
            let all: [UInt64] = [0, 1, v &- 1, v &+ 1, v &* 2, v &+ 4096, v &* 1000, 1 << 31, 1 << 32, 1 << 40, 1 << 62, UInt64.max]
            return width == 4 ? all.map { $0 & 0xFFFF_FFFF } : all
        }
        family = "4 header sizes inflated (resigned)"
        for offset in stride(from: 16, through: 64, by: 8) {
            let v = HostileFiles.u64(original, offset)
            for nv in values(v, width: 8) where nv != v {
                var m = original
                HostileFiles.setU64(&m, offset, nv)
                HostileFiles.resign(&m)
                Self.check(m, baseline: baseline, resigned: true, what: "\(name): header u64 at \(offset) = \(nv)", into: &tallies, family: family)
            }
        }
        family = "4 directory counts, sizes, offsets inflated (resigned)"
        let fields = Self.directoryFields(original, file)
        for _ in 0..<500 {
            let f = fields[rng.below(fields.count)]
            let v = f.width == 4 ? UInt64(Self.u32(original, f.offset)) : HostileFiles.u64(original, f.offset)
            let candidates = values(v, width: f.width).filter { $0 != v }
            let nv = candidates[rng.below(candidates.count)]
            var m = original
            if f.width == 4 { HostileFiles.setU32(&m, f.offset, UInt32(truncatingIfNeeded: nv)) } else { HostileFiles.setU64(&m, f.offset, nv) }
            HostileFiles.resign(&m)
            Self.check(m, baseline: baseline, resigned: true, what: "\(name): directory \(f.name) at \(f.offset) = \(nv)", into: &tallies, family: family)
        }

        // 5. Metadata: every integer of the config and of the tokenizer's ids inflated or made
        //    negative; structures replaced by wrong types (resigned).
        let config = file.metadata["config"] as! [String: Any]
        let hostileNumbers: [Any] = [0, -1, 1 << 31, 1_000_000_000_000, 1e300, 2.5, true, "7", NSNull()]
        family = "5 config values hostile (resigned)"
        for key in config.keys.sorted() {
            for v in hostileNumbers {
                Self.check(try HostileFiles.withConfig(original) { $0[key] = v }, baseline: baseline, resigned: true,
                           what: "\(name): config \(key) = \(v)", into: &tallies, family: family)
            }
        }
        let tokenizerEdits: [(String, (inout [String: Any]) -> Void)] = [
            ("vocab emptied", { $0["vocab"] = [String]() }),
            ("vocab doubled", { $0["vocab"] = ($0["vocab"] as! [String]) + ($0["vocab"] as! [String]) }),
            ("vocab too large for the model", { $0["vocab"] = ($0["vocab"] as! [String]) + (0..<10).map { "x\($0)" } }),
            ("merges out of range", { $0["merges"] = [0, 1_000_000] }),
            ("merges negative", { $0["merges"] = [-1, 0] }),
            ("merges odd", { $0["merges"] = [0, 1, 2] }),
            ("bos id huge", { $0["bos_id"] = 1 << 40 }),
            ("eos id negative", { $0["eos_id"] = -5 }),
            ("added token past the vocabulary", { $0["added_tokens"] = [["id": 999, "content": "x", "special": true]] }),
            ("normalizer garbage", { $0["normalizer"] = [["prepend": 5]] }),
            ("decoder missing", { $0["decoder"] = nil }),
            ("strip_leading huge", { var d = $0["decoder"] as! [String: Any]; d["strip_leading"] = Int.max; $0["decoder"] = d }),
            ("tokenizer is a number", { $0 = ["model": 5] }),
        ]
        family = "5 tokenizer inconsistent (resigned)"
        for (what, edit) in tokenizerEdits {
            let m = try HostileFiles.withMetadata(original) { meta in
                var t = meta["tokenizer"] as! [String: Any]
                edit(&t)
                meta["tokenizer"] = t
            }
            Self.check(m, baseline: baseline, resigned: true, what: "\(name): tokenizer \(what)", into: &tallies, family: family)
        }
        family = "5 metadata not a model's (resigned)"
        for junk in ["", "null", "[]", "{}", "{\"config\": 5}", String(repeating: "[", count: 1000), "{\"config\": {\"hidden_size\": 8"] {
            Self.check(try HostileFiles.withMetadataBytes(original, Array(junk.utf8)), baseline: baseline, resigned: true,
                       what: "\(name): metadata \(junk.prefix(20))", into: &tallies, family: family)
        }

        for (f, t) in tallies.sorted(by: { $0.key < $1.key }) { print("mutation test, \(name), \(f): \(t)") }
        let all = tallies.values.reduce(into: Tally()) { a, t in
            a.refused += t.refused; a.flagged += t.flagged; a.identical += t.identical; a.changed += t.changed
            a.slowest = max(a.slowest, t.slowest)
        }
        print("mutation test, \(name), all: \(all)")
        #expect(all.refused > all.total / 2, "most mutants must be refused: \(all)")
        #expect(all.slowest < 5, "a mutant took \(all.slowest) s: a hang in the making")
    }

    // MARK: Directory layout

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    /// Every numeric field of the directory of a valid file: name, byte offset, width.
    static func directoryFields(_ b: [UInt8], _ file: HymbaFile) -> [(name: String, offset: Int, width: Int)] {
        var out: [(String, Int, Int)] = []
        var p = Int(file.header.directoryOffset)
        out.append(("tensor_count", p, 4)); out.append(("reserved", p + 4, 4))
        p += 8
        for t in file.tensors {
            out.append(("\(t.name).name_length", p, 4))
            p += 4 + Int(u32(b, p))
            out += [("\(t.name).storage_type", p, 4), ("\(t.name).block_size", p + 4, 4), ("\(t.name).rank", p + 8, 4)]
            p += 12
            for i in t.shape.indices { out.append(("\(t.name).shape[\(i)]", p, 8)); p += 8 }
            out += [("\(t.name).raw_length", p, 8), ("\(t.name).data_offset", p + 8, 8), ("\(t.name).data_length", p + 16, 8),
                    ("\(t.name).chunk_count", p + 24, 4)]
            p += 28
            for ci in t.chunks.indices {
                let c = "\(t.name).chunks[\(ci)]"
                out += [("\(c).stored_offset", p, 8), ("\(c).stored_length", p + 8, 8), ("\(c).raw_offset", p + 16, 8),
                        ("\(c).raw_length", p + 24, 8), ("\(c).codec", p + 32, 4), ("\(c).reserved", p + 36, 4)]
                p += 48
            }
        }
        return out
    }
}
