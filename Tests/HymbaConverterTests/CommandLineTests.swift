import Foundation
import Testing
import HymbaFormat
import HymbaRuntime

/// `hymba-convert` as a user runs it: exit codes, messages, and no partial output when
/// interrupted.
@Suite struct CommandLineTests {
    /// The executable next to the test bundle (both are in the build's bin directory).
    static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
        return dir.appendingPathComponent("hymba-convert").path
    }()

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], interruptAfter: Double? = nil, signal: Int32 = SIGINT, fileSizeLimitBlocks: Int? = nil) throws -> Run {
        #expect(FileManager.default.isExecutableFile(atPath: binary), "hymba-convert not built at \(binary)")
        let p = Process()
        if let blocks = fileSizeLimitBlocks {
            // RLIMIT_FSIZE through the shell: writes past it fail as on a full disk.
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "ulimit -f \(blocks) && exec \"$0\" \"$@\"", binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        if let interruptAfter {
            Thread.sleep(forTimeInterval: interruptAfter)
            kill(p.processIdentifier, signal)  // SIGINT as Ctrl-C, SIGTERM as kill, SIGHUP as a closed terminal
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func convertInspectVerify() throws {
        let dir = Fixtures.temporaryDirectory()
        let out = dir + "/m.hymba"
        let c = try Self.run([Fixtures.tinyHymbaUntied, "-o", out, "--quant", "q4", "--codec", "lz4"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("bits/weight") && c.stdout.contains("RMSE") && c.stdout.contains("compression"))
        #expect(c.stderr.contains("converting"), "progress goes to stderr")
        let i = try Self.run(["inspect", out])
        #expect(i.status == 0)
        #expect(i.stdout.contains("model.layers.2.mamba.in_proj.weight") && i.stdout.contains("q4"))
        let j = try Self.run(["inspect", "--json", out])
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        #expect((obj?["tensors"] as? [Any])?.count == (try HymbaFile(path: out)).tensors.count)
        let v = try Self.run(["verify", out])
        #expect(v.status == 0 && v.stdout.contains("OK"))

        // A flipped data byte: verify names the tensor and offset and fails.
        let f = try HymbaFile(path: out)
        let t = f.tensors[5]
        var bytes = [UInt8](FileManager.default.contents(atPath: out)!)
        bytes[Int(t.dataOffset) + 3] ^= 0x80
        _ = FileManager.default.createFile(atPath: out, contents: Data(bytes))
        let bad = try Self.run(["verify", out])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains(t.name) && bad.stderr.contains("offset \(t.dataOffset)"), "\(bad.stderr)")
    }

    @Test func errorsAreOneClearLine() throws {
        let missing = try Self.run(["/nonexistent/ckpt", "-o", "/tmp/x.hymba"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/ckpt"))
        let notModel = Fixtures.temporaryDirectory() + "/not.hymba"
        _ = FileManager.default.createFile(atPath: notModel, contents: Data(repeating: 7, count: 500))
        let r = try Self.run(["inspect", notModel])
        #expect(r.status != 0 && r.stderr.contains("not a hymba model file"))
        let q = try Self.run([Fixtures.tinyHymba, "-o", "/tmp/x.hymba", "--quant", "q3"])
        #expect(q.status != 0 && q.stderr.contains("q3"))
    }

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func interruptedConversionLeavesNothing(signal: Int32) throws {
        let dir = Fixtures.temporaryDirectory()
        let out = dir + "/big.hymba"
        // The 350M config takes seconds to synthesize: interrupt it half-way.
        let r = try Self.run(["synthesize", "--config", Fixtures.config("350m"), "-o", out, "--quant", "q4"],
                             interruptAfter: 1.5, signal: signal)
        #expect(r.status == 128 + signal, "interrupted conversion must fail with 128+signal: \(r.status) \(r.stderr)")
        #expect(r.stderr.contains("interrupted: no output file written"))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// A full disk, simulated with a file-size limit (RLIMIT_FSIZE, 64 KiB): the write error is
    /// reported (SIGXFSZ is ignored, so it does not kill the process), the partial file is
    /// removed and an existing output is kept.
    @Test func diskFullLeavesNothingAndKeepsTheOldOutput() throws {
        let dir = Fixtures.temporaryDirectory()
        let out = dir + "/m.hymba"
        let r = try Self.run([Fixtures.tinyHymba, "-o", out, "--quant", "q8"], fileSizeLimitBlocks: 128)
        #expect(r.status == 1, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("write at offset") && r.stderr.contains("File too large"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

        _ = FileManager.default.createFile(atPath: out, contents: Data("previous model".utf8))
        let again = try Self.run([Fixtures.tinyHymba, "-o", out, "--quant", "q8"], fileSizeLimitBlocks: 128)
        #expect(again.status == 1)
        #expect(FileManager.default.contents(atPath: out) == Data("previous model".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.hymba"])
    }

    /// The data-safety refusals and notices as a user sees them.
    @Test func refusalsWarningsAndTheReplaceNotice() throws {
        let ckpt = try Fixtures.copy(Fixtures.tinyHymba)
        let shard = ckpt + "/model.safetensors"
        let before = FileManager.default.contents(atPath: shard)
        let overwrite = try Self.run([ckpt, "-o", shard])
        #expect(overwrite.status == 1 && overwrite.stderr.contains("output \(shard) is the input \(shard)"), "\(overwrite.stderr)")
        #expect(FileManager.default.contents(atPath: shard) == before)

        let dir = Fixtures.temporaryDirectory()
        let out = dir + "/m.hymba"
        // synthesize protects its config (and --tokenizer files) the same way.
        let config = dir + "/config.json"
        try FileManager.default.copyItem(atPath: Fixtures.tinyHymba + "/config.json", toPath: config)
        let synth = try Self.run(["synthesize", "--config", config, "-o", config])
        #expect(synth.status == 1 && synth.stderr.contains("output \(config) is the input \(config)"), "\(synth.stderr)")
        let synthTok = try Self.run(["synthesize", "--config", config, "--tokenizer", ckpt, "-o", ckpt + "/tokenizer.json"])
        #expect(synthTok.status == 1 && synthTok.stderr.contains("is the input \(ckpt)/tokenizer.json"), "\(synthTok.stderr)")
        try FileManager.default.removeItem(atPath: config)

        let noDir = try Self.run([ckpt, "-o", dir + "/missing/m.hymba"])
        #expect(noDir.status == 1 && noDir.stderr.contains("output directory \(dir)/missing does not exist"), "\(noDir.stderr)")

        let warned = try Self.run([ckpt, "-o", out, "--codec", "lz4", "--level", "9", "--keep", "*.outproj.weight=q8",
                                   "--keep", "*.out_proj.weight=q8"])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("warning: --level 9 has no effect with --codec lz4"), "\(warned.stderr)")
        #expect(warned.stderr.contains("warning: --keep *.outproj.weight=q8 matches no tensor of this model"))
        #expect(!warned.stderr.contains("--keep *.out_proj.weight=q8 matches"))
        #expect(warned.stdout.hasPrefix("wrote \(out)\n"), "\(warned.stdout)")
        let size = try #require(FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
        let replaced = try Self.run([ckpt, "-o", out])
        #expect(replaced.status == 0 && !replaced.stderr.contains("warning"), "\(replaced.stderr)")
        #expect(replaced.stdout.hasPrefix("wrote \(out) (replaced the existing file of \(size) bytes)"), "\(replaced.stdout)")
    }

    /// No tokenizer.json: refused unless --no-tokenizer; then inspect and hymba-edge info say
    /// so, and info still plans memory.
    @Test func checkpointWithoutTokenizer() throws {
        let ckpt = try Fixtures.copy(Fixtures.tinyHymba)
        try FileManager.default.removeItem(atPath: ckpt + "/tokenizer.json")
        let out = Fixtures.temporaryDirectory() + "/m.hymba"
        let refused = try Self.run([ckpt, "-o", out])
        #expect(refused.status == 1 && refused.stderr.contains("\(ckpt)/tokenizer.json: missing") &&
                refused.stderr.contains("--no-tokenizer"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let accepted = try Self.run([ckpt, "-o", out, "--no-tokenizer"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let inspect = try Self.run(["inspect", out])
        #expect(inspect.stdout.contains("tokenizer:   none (this file cannot turn text into tokens"), "\(inspect.stdout)")
        let edge = URL(fileURLWithPath: Self.binary).deletingLastPathComponent().appendingPathComponent("hymba-edge").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: edge)
        p.arguments = ["info", out, "--ctx", "256", "--memory-budget", "64M"]
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe
        p.standardError = err
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(errText)")
        #expect(text.contains("tokenizer: none (this file cannot turn text into tokens"), "\(text)")
        #expect(text.contains("memory plan ("), "\(text)")
    }

    @Test func precomputedPrefixIsStoredAndUsed() throws {
        let dir = Fixtures.temporaryDirectory()
        let plain = dir + "/plain.hymba", withPrefix = dir + "/prefix.hymba"
        #expect(try Self.run([Fixtures.tinyHymba, "-o", plain, "--quant", "q8"]).status == 0)
        let r = try Self.run([Fixtures.tinyHymba, "-o", withPrefix, "--quant", "q8", "--precompute-prefix"])
        #expect(r.status == 0, "\(r.stderr)")
        let file = try HymbaFile(path: withPrefix)
        let names = file.tensors.map(\.name).filter { $0.hasPrefix(MetaPrefix.tensorPrefix) }
        // tiny-hymba: 8 layers, 5 KV producers: 5 × (keys, values) + 8 × (conv, ssm).
        #expect(names.count == 5 * 2 + 8 * 2)
        let model = try HymbaModel(file: file)
        #expect(model.hasMetaPrefix, "a stored prefix is installed at load, not computed")
        let computed = try HymbaModel(file: try HymbaFile(path: plain))
        #expect(!computed.hasMetaPrefix)
        #expect(model.metaPrefix == computed.metaPrefix, "stored prefix equals the one computed from the same weights")
        // Derived tensors are not weights: bits per weight and the weight count do not change.
        let plainFile = try HymbaFile(path: plain)
        #expect(file.bitsPerWeight == plainFile.bitsPerWeight)
        #expect(file.weightTotals.elements == plainFile.weightTotals.elements)
        #expect(file.weightTotals.elements == file.config.parameterCount)
        let ids = [1, 450, 4996, 17354, 1701]
        let a = try HymbaSession(model: model, options: HymbaOptions(kvType: .f32)).eval(ids: ids, mode: .full)
        let b = try HymbaSession(model: computed, options: HymbaOptions(kvType: .f32)).eval(ids: ids, mode: .full)
        #expect(a == b)
    }

    /// The conventions shared with hymba-edge (`CommandLineEntry`): a misspelt subcommand is
    /// an unknown command (unless it names something to convert), usage errors exit 64 with
    /// the command's usage line, failures exit 1.
    @Test func unknownCommandAndExitCodes() throws {
        let misspelt = try Self.run(["inspcet", "model.hymba"])
        #expect(misspelt.status == 64, "\(misspelt.stderr)")
        #expect(misspelt.stderr.hasPrefix("Error: unknown command 'inspcet' (commands: convert, inspect, verify, synthesize)"), "\(misspelt.stderr)")
        let badQuant = try Self.run(["convert", "/nonexistent/ckpt", "-o", "/tmp/x.hymba", "--quant", "q3"])
        #expect(badQuant.status == 64 && badQuant.stderr.contains("Usage: hymba-convert convert "), "\(badQuant.stderr)")
        let missing = try Self.run(["/nonexistent/ckpt", "-o", "/tmp/x.hymba"])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("error: "), "\(missing.stderr)")
        let version = try Self.run(["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("0.1.0 (commit ") && version.stdout.contains(")\nkernels: "), "\(version.stdout)")
    }

    /// `-o -` writes the model to stdout (the summary to stderr): the same bytes as a file.
    @Test func outputToStdout() throws {
        let file = Fixtures.temporaryDirectory() + "/stdout-check.hymba"
        let written = try Self.run([Fixtures.tinyHymba, "-o", file, "--quant", "q8"])
        #expect(written.status == 0, "\(written.stderr)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = [Fixtures.tinyHymba, "-o", "-", "--quant", "q8"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        // stderr (the summary, the progress) is small enough for the pipe: read after stdout.
        try p.run()
        let bytes = out.fileHandleForReading.readDataToEndOfFile()
        let summary = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(summary)")
        #expect(bytes == (try Data(contentsOf: URL(fileURLWithPath: file))))
        #expect(summary.contains("wrote stdout") && summary.contains("bits/weight"), "\(summary)")
    }
}
