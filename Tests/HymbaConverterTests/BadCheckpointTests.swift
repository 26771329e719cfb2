import Foundation
import Testing
@testable import HymbaConverter
import HymbaFormat
import HymbaRuntime

/// Broken checkpoints are refused with a message naming the problem, and leave no output.
@Suite struct BadCheckpointTests {
    /// Converts `dir` and returns the error message; asserts no output file (or temporary) is left.
    static func refusal(_ dir: String) -> String? {
        let outDir = Fixtures.temporaryDirectory()
        let out = outDir + "/out.hymba"
        defer {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []
            #expect(left.isEmpty, "conversion error left files behind: \(left)")
        }
        do {
            _ = try Fixtures.convert(dir, quant: .q8, output: out)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Rewrites the fixture's model.safetensors through `edit`.
    static func editedCheckpoint(_ edit: (inout [SafetensorsWriter.Tensor]) -> Void) throws -> String {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var tensors = try SafetensorsWriter.read(dir + "/model.safetensors")
        edit(&tensors)
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        SafetensorsWriter.write(tensors, to: dir + "/model.safetensors")
        return dir
    }

    static func editedConfig(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        edit(&json)
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        _ = FileManager.default.createFile(atPath: dir + "/config.json", contents: try JSONSerialization.data(withJSONObject: json))
        return dir
    }

    @Test func missingTensor() throws {
        let dir = try Self.editedCheckpoint { $0.removeAll { $0.name == "model.layers.2.mamba.D.0" } }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("missing tensor model.layers.2.mamba.D.0"))
    }

    @Test func wrongShape() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.layers.1.mamba.out_proj.weight" }!
            ts[i].shape = [128, 64]
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.layers.1.mamba.out_proj.weight") && msg.contains("[128, 64]") && msg.contains("[64, 128]"))
    }

    @Test func unknownTensor() throws {
        let dir = try Self.editedCheckpoint { $0.append(.init(name: "model.layers.0.extra.weight", dtype: "BF16", shape: [2], bytes: [0, 0, 0, 0])) }
        #expect(Self.refusal(dir)?.contains("model.layers.0.extra.weight") == true)
    }

    @Test(arguments: [UInt16(0x7FC0), 0x7F80, 0xFF80])
    func nonFiniteWeight(bits: UInt16) throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.layers.4.moe.experts.0.gate_proj.weight" }!
            // element [1, 3] of a [128, 64] bf16 tensor
            let at = 2 * (1 * 64 + 3)
            ts[i].bytes[at] = UInt8(bits & 0xFF)
            ts[i].bytes[at + 1] = UInt8(bits >> 8)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.layers.4.moe.experts.0.gate_proj.weight") && msg.contains("[1, 3]"), "\(msg)")
    }

    /// 9961472 (bf16 0x4B18) is finite, but its q8 block scale 9961472/127 > 65504 overflows
    /// f16: the block would read back as NaN. Refused, naming the element and the type.
    @Test func weightTooLargeForTheType() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.layers.4.moe.experts.0.gate_proj.weight" }!
            let at = 2 * (1 * 64 + 3)
            ts[i].bytes[at] = 0x18
            ts[i].bytes[at + 1] = 0x4B
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("tensor model.layers.4.moe.experts.0.gate_proj.weight: element [1, 3] = 9961472.0 is too large for q8"), "\(msg)")
    }

    @Test func byteCountMismatch() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.final_layernorm.weight" }!
            ts[i].bytes.removeLast(2)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.final_layernorm.weight") && msg.contains("needs 128 bytes"))
    }

    @Test func truncatedHeaderLength() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        var bytes = [UInt8](FileManager.default.contents(atPath: dir + "/model.safetensors")!)
        bytes.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0, 0])
        _ = FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data(bytes))
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.safetensors") && msg.contains("header length"))
    }

    @Test func invalidJSONHeader() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        SafetensorsWriter.write([], to: dir + "/model.safetensors", headerOverride: "{\"a\": [1, 2")
        #expect(Self.refusal(dir)?.contains("not valid JSON") == true)
    }

    @Test func unsupportedConfigs() throws {
        let cases: [(String, Any, String)] = [
            ("num_experts", 4, "num_experts"),
            ("memory_tokens_interspersed_every", 16, "memory_tokens_interspersed_every"),
            ("kq_norm", "rms", "kq_norm"),
            ("rope_type", "yarn", "rope_type"),
            ("hidden_size", 63, "hidden_size"),
        ]
        for (key, value, named) in cases {
            let dir = try Self.editedConfig { $0[key] = value }
            let msg = try #require(Self.refusal(dir), "\(key)=\(value) must be refused")
            #expect(msg.contains(named) && msg.contains("config.json"), "\(msg)")
        }
    }

    /// Rewrites the JSON header of the fixture's model.safetensors (the data bytes stay).
    static func editedHeader(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        let path = dir + "/model.safetensors"
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
        edit(&header)
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out += json + bytes[(8 + headerLength)...]
        _ = FileManager.default.createFile(atPath: path, contents: Data(out))
        return dir
    }

    static func setEntry(_ header: inout [String: Any], _ name: String, _ key: String, _ value: Any) {
        var e = header[name] as! [String: Any]
        e[key] = value
        header[name] = e
    }

    @Test func overlappingOffsets() throws {
        let dir = try Self.editedHeader { h in
            let a = (h["model.layers.0.input_layernorm.weight"] as! [String: Any])["data_offsets"]!
            Self.setEntry(&h, "model.layers.1.input_layernorm.weight", "data_offsets", a)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.safetensors") && msg.contains("overlap") && msg.contains("input_layernorm.weight"), "\(msg)")
    }

    @Test func offsetsOutsideTheFile() throws {
        let cases: [(Any, String)] = [
            ([0, 1 << 40], "outside the data section"),
            ([-128, 0], "outside the data section"),
            ([256, 128], "outside the data section"),
            ([0.5, 128.5], "must be [begin, end]"),
            ("0-128", "must be [begin, end]"),
        ]
        for (offsets, message) in cases {
            let dir = try Self.editedHeader { Self.setEntry(&$0, "model.final_layernorm.weight", "data_offsets", offsets) }
            let msg = try #require(Self.refusal(dir), "\(offsets)")
            #expect(msg.contains("model.final_layernorm.weight") && msg.contains(message), "\(offsets): \(msg)")
        }
    }

    @Test func malformedShapesAndDTypes() throws {
        let cases: [(String, Any, String)] = [
            ("shape", [64.5], "invalid dimension 64.5"),
            ("shape", [-64], "invalid dimension -64"),
            ("shape", [true], "invalid dimension"),
            ("shape", [1 << 41], "invalid dimension"),
            ("shape", [65536, 65536, 65536], "is too large"),
            ("dtype", "F64", "unsupported dtype F64"),
            ("dtype", "F32", "needs 256 bytes, data_offsets give 128"),
            ("dtype", 5, "missing dtype"),
        ]
        for (key, value, message) in cases {
            let dir = try Self.editedHeader { Self.setEntry(&$0, "model.final_layernorm.weight", key, value) }
            let msg = try #require(Self.refusal(dir), "\(key) = \(value)")
            #expect(msg.contains("model.final_layernorm.weight") && msg.contains(message), "\(key) = \(value): \(msg)")
        }
    }

    @Test func integerTensorWhereWeightsBelong() throws {
        let dir = try Self.editedCheckpoint { ts in
            let i = ts.firstIndex { $0.name == "model.final_layernorm.weight" }!
            ts[i].dtype = "I32"
            ts[i].bytes = [UInt8](repeating: 0, count: 4 * 64)
        }
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.safetensors: tensor model.final_layernorm.weight at offset ") &&
                msg.contains("has dtype I32; expected BF16, F16 or F32"), "\(msg)")
    }

    @Test func inconsistentConfigs() throws {
        let cases: [(String, Any, String)] = [
            ("kv_reuse_group", [[1, 99]], "kv_reuse_group has layer 99"),
            ("kv_reuse_group", [[2, 1]], "not in increasing layer order"),
            ("global_attn_idx", [-1], "global_attn_idx has layer -1"),
            ("num_key_value_heads", 3, "not divisible by num_key_value_heads 3"),
            ("vocab_size", 1_000_000_000_000, "vocab_size = 1000000000000 is larger than this runtime accepts"),
            ("rope_theta", -1, "rope_theta"),
            ("bos_token_id", 40_000, "bos_token_id 40000 outside the vocabulary"),
            ("hidden_size", "64", "hidden_size must be an integer"),
        ]
        for (key, value, named) in cases {
            let dir = try Self.editedConfig { $0[key] = value }
            let msg = try #require(Self.refusal(dir), "\(key)=\(value) must be refused")
            #expect(msg.contains(named) && msg.contains("config.json"), "\(key)=\(value): \(msg)")
        }
    }

    /// `num_memory_tokens: 0` is a valid config (NVIDIA's model then has no
    /// `model.memory_tokens`): it converts and runs; a leftover memory_tokens tensor is unknown.
    @Test func configWithoutMetaTokens() throws {
        let dir = try Self.editedCheckpoint { $0.removeAll { $0.name == "model.memory_tokens" } }
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        json["num_memory_tokens"] = 0
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let (path, _) = try Fixtures.convert(dir, quant: .q8)
        let model = try HymbaModel(file: try HymbaFile(path: path))
        #expect(model.config.numMetaTokens == 0)
        let logits = try HymbaSession(model: model, options: HymbaOptions(contextLength: 8, prefillChunk: 4))
            .eval(ids: [1, 2, 3], mode: .chunked(4))
        #expect(logits.count == 3 * model.config.vocabSize && logits.allSatisfy(\.isFinite))

        let stale = try Self.editedConfig { $0["num_memory_tokens"] = 0 }
        let msg = try #require(Self.refusal(stale))
        #expect(msg.contains("tensors this config does not use: model.memory_tokens"), "\(msg)")
    }

    @Test func tokenizerLargerThanTheVocabulary() throws {
        let dir = Fixtures.tinyHymba
        var tokenizer = try #require(try TokenizerImport.metadataObject(directory: dir))
        tokenizer["vocab"] = (tokenizer["vocab"] as! [String]) + ["<extra-1>", "<extra-2>"]
        let outDir = Fixtures.temporaryDirectory()
        #expect {
            _ = try Converter.convert(checkpoint: try Checkpoint(directory: dir), output: outDir + "/m.hymba",
                                      tokenizer: tokenizer, options: ConversionOptions())
        } throws: { error in
            "\(error)".contains("the tokenizer has 32003 tokens but config.json's vocab_size is 32001")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outDir).isEmpty)
    }

    /// A fixed set of damaged safetensors files (every truncation point that matters, header
    /// lengths off by one and absurd, 400 bit flips in the header): each is refused with a
    /// message naming the file, or parses into the expected tensors, never a crash. Safetensors
    /// has no checksums: a flip in a tensor's bytes or in the header's padding cannot be seen
    /// (the NaN/Inf check at conversion catches some of the former).
    @Test func safetensorsMutants() throws {
        let dir = Fixtures.temporaryDirectory()
        try FileManager.default.copyItem(atPath: Fixtures.tinyHymba + "/config.json", toPath: dir + "/config.json")
        let path = dir + "/model.safetensors"
        let original = [UInt8](FileManager.default.contents(atPath: Fixtures.tinyHymba + "/model.safetensors")!)
        let n = original.count
        let headerEnd = 8 + Int(original[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let entries = try SafetensorsFile(path: Fixtures.tinyHymba + "/model.safetensors").entries
        var refused = 0, accepted = 0

        /// Parses and validates the checkpoint; true when refused (with a message naming the file).
        func outcome(_ what: @autoclosure () -> String) -> Bool {
            do {
                let ckpt = try Checkpoint(directory: dir)
                try ckpt.validateTensors()
                accepted += 1
                return false
            } catch {
                refused += 1
                let msg = "\(error)"
                #expect(msg.contains("model.safetensors") || msg.contains("tensor"), "\(what()): \(msg)")
                return true
            }
        }
        func write(_ bytes: ArraySlice<UInt8>) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

        // Truncations: inside the length field, around the end of the header, at each tensor's
        // start and end: all refused (some tensor is then past the end).
        var cuts = Set(0...9).union([headerEnd - 1, headerEnd, headerEnd + 1, n - 1])
        for e in entries { cuts.formUnion([e.offset, e.offset + e.length - 1]) }
        for cut in cuts.sorted() where cut < n {
            write(original[0..<cut])
            #expect(outcome("truncated to \(cut)"), "truncated to \(cut) of \(n) bytes must be refused")
        }
        // Header lengths: off by one and absurd; all refused except one less, which can only
        // drop a padding space (the data then starts a byte early: safetensors cannot tell).
        let length = UInt64(headerEnd - 8)
        for v: UInt64 in [0, 1, 2, length + 1, length + 8, UInt64(n - 8), UInt64(n - 7), 1 << 32, 1 << 63, .max] {
            var m = original
            for i in 0..<8 { m[i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
            write(m[...])
            #expect(outcome("header length \(v)"), "header length \(v) must be refused")
        }
        var shorter = original
        for i in 0..<8 { shorter[i] = UInt8(truncatingIfNeeded: (length - 1) >> (8 * UInt64(i))) }
        write(shorter[...])
        #expect(outcome("header length \(length - 1)") || original[headerEnd - 1] == 0x20, "only a padding space may be dropped")
        // Bit flips in the header (the file rewritten once, then patched in place).
        write(original[...])
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        var rng = SplitMix(state: 0x5AFE_7E75)
        for _ in 0..<400 {
            let at = Int(rng.next() % UInt64(headerEnd))
            let flipped = original[at] ^ UInt8(1 << (rng.next() % 8))
            withUnsafeBytes(of: flipped) { _ = pwrite(fd, $0.baseAddress, 1, off_t(at)) }
            _ = outcome("bit flip at \(at)")
            withUnsafeBytes(of: original[at]) { _ = pwrite(fd, $0.baseAddress, 1, off_t(at)) }
        }
        print("safetensors mutants: \(refused + accepted): \(refused) refused, \(accepted) parsed into the expected tensors")
        #expect(refused > 350 && refused + accepted == cuts.filter { $0 < n }.count + 11 + 400)
    }

    /// The mutations' fixed-seed generator: the converter's SplitMix64.
    typealias SplitMix = SyntheticWeights.SplitMix64

    /// The runtime opens checkpoints through the same reader: what the converter refuses,
    /// `SafetensorsCheckpoint` refuses with the same message.
    @Test func runtimeReaderRefusesTheSame() throws {
        let dirs = [
            try Self.editedCheckpoint { $0.removeAll { $0.name == "model.layers.2.mamba.D.0" } },
            try Self.editedCheckpoint { $0.append(.init(name: "model.layers.0.extra.weight", dtype: "BF16", shape: [2], bytes: [0, 0, 0, 0])) },
        ]
        for dir in dirs {
            let converter = try #require(Self.refusal(dir))
            var runtime: String?
            do { _ = try SafetensorsCheckpoint(path: dir) } catch { runtime = "\(error)" }
            #expect(runtime == converter)
        }
    }

    /// A weight_map value that is not a file name is named (the runtime's reader had this check).
    @Test func indexEntryThatIsNotAFileName() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymbaUntied)
        let indexPath = dir + "/model.safetensors.index.json"
        var index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: indexPath))) as! [String: Any]
        var map = index["weight_map"] as! [String: Any]
        map["model.final_layernorm.weight"] = 3
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: indexPath))
        let msg = try #require(Self.refusal(dir))
        #expect(msg.contains("model.safetensors.index.json: weight_map entry model.final_layernorm.weight is 3, expected a file name"), "\(msg)")
    }

    @Test func missingShardListedInIndex() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymbaUntied)
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00003.safetensors")
        #expect(Self.refusal(dir)?.contains("model-00002-of-00003.safetensors") == true)
    }

    @Test func failedConversionKeepsAnExistingOutput() throws {
        let out = Fixtures.temporaryDirectory() + "/keep.hymba"
        _ = FileManager.default.createFile(atPath: out, contents: Data("previous".utf8))
        let dir = try Self.editedCheckpoint { $0.removeAll { $0.name == "model.memory_tokens" } }
        #expect(throws: (any Error).self) { try Fixtures.convert(dir, quant: .q8, output: out) }
        #expect(FileManager.default.contents(atPath: out) == Data("previous".utf8))
    }
}
