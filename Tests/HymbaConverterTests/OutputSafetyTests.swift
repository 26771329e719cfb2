import Foundation
import Testing
import HymbaConverter
import HymbaFormat

/// The converter never overwrites what it reads, checks the output directory before working,
/// says when it replaces a file, and keeps one tensor's source resident at a time without
/// changing a byte of the output.
@Suite struct OutputSafetyTests {
    static func sha(_ path: String) -> String {
        var h = SHA256()
        h.update([UInt8](FileManager.default.contents(atPath: path) ?? Data()))
        return SHA256.hex(h.finalize())
    }

    /// Converting `dir` into `output` must fail with a message containing every `fragment`.
    static func expectRefusal(_ dir: String, output: String, _ fragments: [String]) {
        do {
            _ = try Fixtures.convert(dir, quant: .q8, output: output)
            Issue.record("conversion to \(output) was not refused")
        } catch {
            for f in fragments { #expect("\(error)".contains(f), "\(error)") }
        }
    }

    @Test func outputThatIsAnInputIsRefused() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymbaUntied)
        for name in ["model-00002-of-00003.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                     "model.safetensors.index.json"] {
            let path = dir + "/" + name
            let before = Self.sha(path)
            Self.expectRefusal(dir, output: path, ["output \(path) is the input \(path)", "refusing to overwrite"])
            #expect(Self.sha(path) == before, "\(name) changed")
        }
        // The same file by another spelling of its path.
        let shard = dir + "/model-00001-of-00003.safetensors"
        Self.expectRefusal(dir, output: dir + "/./model-00001-of-00003.safetensors", ["the input \(shard)"])
    }

    @Test func outputLinkedToAnInputIsRefused() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        let shard = dir + "/model.safetensors"
        let before = Self.sha(shard)
        let other = Fixtures.temporaryDirectory()
        let symbolic = other + "/symbolic.hymba", hard = other + "/hard.hymba"
        try FileManager.default.createSymbolicLink(atPath: symbolic, withDestinationPath: shard)
        #expect(link(shard, hard) == 0)
        Self.expectRefusal(dir, output: symbolic, ["output \(symbolic) is the input \(shard)"])
        Self.expectRefusal(dir, output: hard, ["output \(hard) is the same file as (through a link) the input \(shard)"])
        #expect(Self.sha(shard) == before)
        let left = try FileManager.default.contentsOfDirectory(atPath: other).sorted()
        #expect(left == ["hard.hymba", "symbolic.hymba"], "nothing else written: \(left)")
    }

    @Test func missingOrUnusableOutputDirectoryIsRefusedFirst() throws {
        let base = Fixtures.temporaryDirectory()
        let missing = base + "/no-such-dir/model.hymba"
        Self.expectRefusal(Fixtures.tinyHymba, output: missing, ["output directory \(base)/no-such-dir does not exist"])
        // A file where the directory should be.
        _ = FileManager.default.createFile(atPath: base + "/plain", contents: Data("x".utf8))
        Self.expectRefusal(Fixtures.tinyHymba, output: base + "/plain/model.hymba", ["output directory \(base)/plain is not a directory"])
        Self.expectRefusal(Fixtures.tinyHymba, output: base, ["output \(base) is a directory"])
        // The refusal comes before any work: the messages name no temporary file.
        do { _ = try Fixtures.convert(Fixtures.tinyHymba, quant: .q8, output: missing) } catch {
            #expect(!"\(error)".contains(".partial"))
        }
    }

    @Test func replacingAFileIsReported() throws {
        let out = Fixtures.temporaryDirectory() + "/m.hymba"
        let first = try Fixtures.convert(Fixtures.tinyHymba, quant: .q8, output: out).report
        #expect(first.replacedBytes == nil)
        #expect(first.summary.hasPrefix("wrote \(out)\n"))
        let size = try #require(FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
        let second = try Fixtures.convert(Fixtures.tinyHymba, quant: .q4, output: out).report
        #expect(second.replacedBytes == size)
        #expect(second.summary.hasPrefix("wrote \(out) (replaced the existing file of \(size) bytes)\n"), "\(second.summary)")
    }

    /// Dropping each source tensor's pages after it is written (the RSS-bounded path) gives
    /// the same bytes as keeping them, for a sharded and a single-file checkpoint.
    @Test(arguments: [StorageType.q4, .bf16])
    func releasingSourcePagesChangesNoByte(quant: StorageType) throws {
        for fixture in [Fixtures.tinyHymba, Fixtures.tinyHymbaUntied] {
            var outputs: [Data] = []
            for release in [true, false] {
                var options = ConversionOptions()
                options.recipe = QuantizationRecipe(matrixType: quant)
                options.releaseSourcePages = release
                let out = Fixtures.temporaryDirectory() + "/m.hymba"
                _ = try Converter.convert(checkpoint: try Checkpoint(directory: fixture), output: out,
                                          tokenizer: try TokenizerImport.metadataObject(directory: fixture), options: options)
                outputs.append(try Data(contentsOf: URL(fileURLWithPath: out)))
            }
            #expect(outputs[0] == outputs[1], "\(fixture) \(quant)")
        }
    }

    /// The released pages are read again correctly: converting twice from one opened
    /// checkpoint (as --precompute-prefix does) gives the same file.
    @Test func aCheckpointReadsTheSameAfterItsPagesAreReleased() throws {
        let ckpt = try Checkpoint(directory: Fixtures.tinyHymbaUntied)
        let tok = try TokenizerImport.metadataObject(directory: Fixtures.tinyHymbaUntied)
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: .q4)
        let a = Fixtures.temporaryDirectory() + "/a.hymba", b = Fixtures.temporaryDirectory() + "/b.hymba"
        _ = try Converter.convert(checkpoint: ckpt, output: a, tokenizer: tok, options: options)
        _ = try Converter.convert(checkpoint: ckpt, output: b, tokenizer: tok, options: options)
        #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
    }

    @Test func checkpointWithoutTokenizerNeedsTheOptOut() throws {
        let dir = try Fixtures.copy(Fixtures.tinyHymba)
        try FileManager.default.removeItem(atPath: dir + "/tokenizer.json")
        do {
            _ = try TokenizerImport.requiredMetadataObject(directory: dir)
            Issue.record("a checkpoint without tokenizer.json was accepted")
        } catch {
            #expect("\(error)" == "\(dir)/tokenizer.json: missing: a model file without a tokenizer cannot generate text (pass --no-tokenizer to convert the weights alone)")
        }
        #expect(try TokenizerImport.requiredMetadataObject(directory: Fixtures.tinyHymba)["vocab"] != nil)
    }

    @Test func overridesThatMatchNothingAreFound() {
        let recipe = QuantizationRecipe(matrixType: .q4, overrides: [
            .init(pattern: "*.out_proj.weight", type: .q8), .init(pattern: "*.outproj.weight", type: .q8),
            .init(pattern: "lm_head.weight", type: .q8),
        ])
        let names = ["model.layers.0.mamba.out_proj.weight", "model.embed_tokens.weight"]
        #expect(recipe.unmatchedOverrides(among: names).map(\.pattern) == ["*.outproj.weight", "lm_head.weight"])
    }
}
