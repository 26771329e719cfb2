import Foundation
import Testing
@testable import HymbaFormat
@testable import HymbaRuntime

/// Crafted hostile model files, each refused with a message naming the problem. The edits are
/// resigned (checksums recomputed), so they reach the validation behind the checksums, as a
/// deliberate forger's would.
@Suite struct HostileFileTests {
    static let seed: [UInt8] = try! HostileFiles.seed(codec: .zstd, quant: .q4, keep: [("*.out_proj.weight", .q8)])

    static func refusal(_ bytes: [UInt8], verifyChecksums: Bool = true) -> String? {
        if case .refused(let m) = HostileFiles.exercise(bytes, verifyChecksums: verifyChecksums) { return m }
        return nil
    }

    @Test func inMemoryAndMappedOpensAgree() throws {
        let path = HostileFiles.temporaryDirectory + "/agree.hymba"
        try Data(Self.seed).write(to: URL(fileURLWithPath: path))
        let a = try HymbaFile(path: path), b = try HostileFiles.layout(Self.seed)
        #expect(a.tensors == b.tensors && a.header == b.header && a.config == b.config)
        #expect(a.verify().isEmpty && b.verify().isEmpty)
    }

    @Test(arguments: [
        ("vocab_size", 1_000_000_000_000 as Any, "vocab_size = 1000000000000 is larger than this runtime accepts"),
        ("hidden_size", 1 << 20, "hidden_size = 1048576"),
        ("num_hidden_layers", 100_000, "num_hidden_layers = 100000"),
        ("max_position_embeddings", 1 << 30, "max_position_embeddings = 1073741824"),
        ("mamba_expand", 1 << 40, "mamba_expand = 1099511627776"),
        ("num_memory_tokens", 1 << 20, "num_memory_tokens = 1048576"),
        ("intermediate_size", 1 << 30, "intermediate_size = 1073741824"),
        ("sliding_window", 1 << 40, "sliding_window = 1099511627776"),
        ("vocab_size", 1e300, "vocab_size must be an integer"),
        ("rope_theta", -5, "rope_theta -5.0 must be a positive finite number"),
        ("rms_norm_eps", 0, "rms_norm_eps 0.0 must be a positive finite number"),
        ("global_attn_idx", [1e300], "global_attn_idx must be a list of integers"),
    ] as [(String, Any, String)])
    func absurdConfigValuesAreRefused(key: String, value: Any, message: String) throws {
        let m = try HostileFiles.withConfig(Self.seed) { $0[key] = value }
        let msg = try #require(Self.refusal(m))
        #expect(msg.contains("invalid metadata") && msg.contains(message), "\(msg)")
    }

    /// Replaces the first tensor's directory entry.
    static func withFirstTensor(_ edit: (inout TensorEntry) -> Void) throws -> [UInt8] {
        var tensors = try HostileFiles.layout(seed).tensors
        edit(&tensors[0])
        return try HostileFiles.withDirectory(seed, tensors)
    }

    @Test func absurdDimensionsAreRefused() throws {
        let cases: [(String, (inout TensorEntry) -> Void, String)] = [
            ("zero dimension", { $0.shape = [0, 8] }, "dimension 0 is outside 1...2^40"),
            ("rank 0", { $0.shape = [] }, "rank 0 is outside 1...8"),
            ("rank 9", { $0.shape = Array(repeating: 1, count: 9) }, "rank 9 is outside 1...8"),
            ("overflowing product", { $0.shape = [1 << 32, 1 << 32] }, "more than 2^40 elements"),
            ("one huge dimension", { $0.shape = [1 << 41] }, "dimension 2199023255552 is outside"),
            ("more than the chunks hold", { $0.shape = [48, 8] }, "raw length"),
        ]
        for (what, edit, message) in cases {
            let msg = try #require(Self.refusal(try Self.withFirstTensor(edit)), "\(what) must be refused")
            #expect(msg.contains("model.embed_tokens.weight") && msg.contains(message), "\(what): \(msg)")
        }
        // A negative dimension is a huge unsigned one in the file.
        var bytes = Self.seed
        let file = try HostileFiles.layout(bytes)
        let shape0 = Int(file.header.directoryOffset) + 8 + 4 + "model.embed_tokens.weight".utf8.count + 12
        #expect(HostileFiles.u64(bytes, shape0) == UInt64(file.tensors[0].shape[0]))
        HostileFiles.setU64(&bytes, shape0, UInt64(bitPattern: -24))
        HostileFiles.resign(&bytes)
        #expect(Self.refusal(bytes)?.contains("dimension 18446744073709551592 is outside 1...2^40") == true)
    }

    @Test func chunksOutsideTheDataSectionOrOverlappingAreRefused() throws {
        let file = try HostileFiles.layout(Self.seed)
        let h = file.header
        let cases: [(String, (inout TensorEntry) -> Void, String)] = [
            ("over the header", { $0.chunks[0].storedOffset = 0 }, "lies outside the data section"),
            ("over the metadata", { $0.chunks[0].storedOffset = 128 }, "lies outside the data section"),
            ("over the directory", { $0.chunks[0].storedOffset = h.directoryOffset }, "lies outside the data section"),
            ("past the end", { $0.chunks[0].storedOffset = UInt64.max - 10 }, "lies outside the data section"),
            ("misaligned", { $0.chunks[0].storedOffset += 1 }, "-aligned"),
        ]
        for (what, edit, message) in cases {
            let msg = try #require(Self.refusal(try Self.withFirstTensor(edit)), "\(what) must be refused")
            #expect(msg.contains(message), "\(what): \(msg)")
        }
        // Two tensors sharing bytes.
        var tensors = file.tensors
        tensors[1].chunks[0].storedOffset = tensors[0].chunks[0].storedOffset
        tensors[1].dataOffset = tensors[1].chunks[0].storedOffset
        tensors[1].dataLength = tensors[1].chunks.map { $0.storedOffset + $0.storedLength }.max()! - tensors[1].dataOffset
        let msg = try #require(Self.refusal(try HostileFiles.withDirectory(Self.seed, tensors)))
        #expect(msg.contains("overlap") || msg.contains("data offset"), "\(msg)")
    }

    @Test func inflatedCountsAreRefusedBeforeAllocating() throws {
        let file = try HostileFiles.layout(Self.seed)
        var bytes = Self.seed
        HostileFiles.setU32(&bytes, Int(file.header.directoryOffset), UInt32.max)
        HostileFiles.resign(&bytes)
        #expect(Self.refusal(bytes)?.contains("tensor count 4294967295 cannot fit") == true)
        let chunkCount = try #require(MutationTests.directoryFields(Self.seed, file).first { $0.name.hasSuffix("chunk_count") })
        bytes = Self.seed
        HostileFiles.setU32(&bytes, chunkCount.offset, UInt32.max)
        HostileFiles.resign(&bytes)
        #expect(Self.refusal(bytes)?.contains("chunk count 4294967295 is zero or cannot fit") == true)
        bytes = Self.seed
        HostileFiles.setU64(&bytes, 24, 1 << 40)  // metadata length
        HostileFiles.resign(&bytes)
        #expect(Self.refusal(bytes)?.contains("does not end before the data offset") == true)
    }

    /// A compressed chunk that claims more than its codec can produce is a would-be
    /// decompression bomb: refused at open, before any allocation. A claim within the codec's
    /// bound but larger than the frame's content is refused when decoding, into memory of the
    /// declared size only.
    @Test func decompressionBombClaimsAreRefused() throws {
        let file = try HostileFiles.layout(Self.seed)
        let victim = try #require(file.tensors.first { $0.chunks.contains { $0.codec == .zstd } })
        let chunk = victim.chunks.first { $0.codec == .zstd }!
        func single(raw: UInt64) -> TensorEntry {
            TensorEntry(name: "bomb", type: .f32, shape: [Int(raw / 4)], rawLength: raw, dataOffset: chunk.storedOffset,
                        dataLength: chunk.storedLength, chunks: [ChunkEntry(storedOffset: chunk.storedOffset, storedLength: chunk.storedLength,
                                                                            rawOffset: 0, rawLength: raw, codec: .zstd, checksum: chunk.checksum)])
        }
        let bomb = try HostileFiles.withDirectory(Self.seed, [single(raw: 1 << 40)])
        let msg = try #require(Self.refusal(bomb))
        #expect(msg.contains("tensor bomb") && msg.contains("claims 1099511627776 raw bytes from \(chunk.storedLength) stored bytes; zstd expands at most 32768-fold"), "\(msg)")

        let plausible = chunk.storedLength * 32768 / 4 * 4
        let g = try HostileFiles.layout(try HostileFiles.withDirectory(Self.seed, [single(raw: plausible)]))
        #expect(throws: HymbaFileError.self) { _ = try g.tensor("bomb") }
        do { _ = try g.tensor("bomb") } catch {
            #expect("\(error)".contains("frame declares \(chunk.rawLength) bytes, expected \(plausible)"), "\(error)")
        }
        #expect(g.decompressedBytes == 0)
        #expect(g.verify().first?.message.contains("does not decode") == true)
    }

    @Test func codecsDecodeExactlyTheDeclaredSize() throws {
        let raw = [UInt8]((0..<4000).map { UInt8($0 % 7) })
        for codec in [ChunkCodec.zstd, .lz4] {
            let packed = try #require(try raw.withUnsafeBytes { try ChunkCompressor.compress($0, codec: codec, level: 3) })
            for size in [raw.count - 1, raw.count + 1, raw.count * 100] {
                var out = [UInt8](repeating: 0, count: size)
                #expect(throws: CodecError.self, "\(codec) into \(size) bytes") {
                    try packed.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try ChunkCompressor.decompress(src, codec: codec, into: $0) } }
                }
            }
            // Trailing bytes after a zstd frame (a second frame, garbage) are refused.
            var out = [UInt8](repeating: 0, count: raw.count)
            let withTrailer = codec == .zstd ? packed + packed : packed + [0x00]
            #expect(throws: CodecError.self, "\(codec) with trailing bytes") {
                try withTrailer.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try ChunkCompressor.decompress(src, codec: codec, into: $0) } }
            }
        }
    }

    @Test func refusedAllocationIsAnErrorNotACrash() {
        #expect(HymbaFile.allocate(1 << 62) == nil)
        let p = HymbaFile.allocate(100)
        #expect(p != nil && Int(bitPattern: p) % 64 == 0)
        free(p)
    }

    @Test func corruptWeightsAreNamedWithTensorAndOffset() throws {
        let file = try HostileFiles.layout(Self.seed)
        let victim = try #require(file.tensors.first { $0.name == "model.layers.1.mamba.in_proj.weight" })
        let chunk = victim.chunks[victim.chunks.count / 2]
        var bytes = Self.seed
        bytes[Int(chunk.storedOffset) + Int(chunk.storedLength) / 2] ^= 0x08
        let msg = try #require(Self.refusal(bytes))
        #expect(msg.contains(victim.name) && msg.contains("offset \(chunk.storedOffset)") && msg.contains("corrupt"), "\(msg)")
        #expect(!msg.contains("missing"), "a corrupt tensor is not a missing one: \(msg)")
    }

    @Test func misshapenTensorIsRefusedBeforeItIsLoaded() throws {
        var tensors = try HostileFiles.layout(Self.seed).tensors
        #expect(tensors[0].name == "model.embed_tokens.weight" && tensors[0].type == .q4 && tensors[0].shape == [24, 8])
        // q4 rows of 8 and of 4 elements both take 22 bytes (one sub-block): [24, 4] is a valid
        // directory entry for the same chunks, but not the shape the config implies.
        tensors[0].shape = [24, 4]
        let file = try HostileFiles.layout(try HostileFiles.withDirectory(Self.seed, tensors))
        #expect(throws: HymbaRuntimeError.tensorShape(name: "model.embed_tokens.weight", expected: [24, 8], found: [24, 4])) {
            _ = try HymbaModel(file: file)
        }
        #expect(file.decompressedBytes == 0, "nothing was decompressed for a tensor refused by its shape")
    }

    @Test func tokenizerInconsistentWithTheModelIsRefused() throws {
        let m = try HostileFiles.withMetadata(Self.seed) { meta in
            var t = meta["tokenizer"] as! [String: Any]
            t["vocab"] = (t["vocab"] as! [String]) + (0..<10).map { "extra\($0)" }
            meta["tokenizer"] = t
        }
        let msg = try #require(Self.refusal(m))
        #expect(msg.contains("the tokenizer has 30 tokens, the model's vocab_size is 24"), "\(msg)")
        let n = try HostileFiles.withMetadata(Self.seed) { meta in
            var t = meta["tokenizer"] as! [String: Any]
            t["merges"] = [0, 1_000_000]
            meta["tokenizer"] = t
        }
        #expect(Self.refusal(n)?.contains("merges[1]: id 1000000 is outside 0..<20") == true)
    }
}
