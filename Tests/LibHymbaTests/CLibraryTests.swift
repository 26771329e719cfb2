import CHymba
import Foundation
import HymbaFormat
import HymbaKit
@testable import HymbaRuntime
import Testing

/// libhymba as C and Python programs use it: built with the system C compiler against the
/// built libhymba.so and run on the example model.
@Suite("libhymba C ABI")
struct CLibraryTests {
    @Test("Examples/c/generate.c builds with cc and streams the greedy text the Swift API generates")
    func cExample() throws {
        let exe = try LibHymba.compileC([LibHymba.repo("Examples/c/generate.c")], output: "generate")
        for prompt in LibHymba.prompts {
            let want = try LibHymba.swiftGreedy(prompt, maxTokens: 24)
            #expect(want.tokens.count == 24 && !want.text.isEmpty)
            // The Swift API is the runtime's Generator.
            let g = try Generator(model: try LibHymba.model.get().textModel)
            let runtime = try g.generate(prompt: prompt, options: GenerationOptions(maxTokens: 24, sampling: .greedy)) { _ in .continue }
            #expect(runtime.text == want.text && runtime.tokens == want.tokens)

            let r = try LibHymba.run(exe, ["-m", LibHymba.modelPath, "-n", "24", prompt])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == want.text + "\n")
            #expect(r.stderr.contains("[24 tokens generated, \(want.promptTokens + 24) held by the context: done]"), "\(r.stderr)")
        }
        // Without -m, from the repository root: the shipped model.
        let r = try LibHymba.run(exe, ["-n", "8", LibHymba.prompts[0]], directory: LibHymba.repositoryRoot.path)
        let short = try LibHymba.swiftGreedy(LibHymba.prompts[0], maxTokens: 8)
        #expect(r.status == 0 && r.stdout == short.text + "\n")
        // llama.cpp's flags: -t threads, --temp the temperature (greedy again: same text).
        let flags = try LibHymba.run(exe, ["-m", LibHymba.modelPath, "-n", "8", "-t", "1", "--temp", "0", LibHymba.prompts[0]])
        #expect(flags.status == 0 && flags.stdout == short.text + "\n", "\(flags.stderr)")
        // Errors: a message and status 1; bad usage: status 64 (EX_USAGE, as hymba-edge).
        let missing = try LibHymba.run(exe, ["-m", "/nonexistent.hymba", "x"])
        #expect(missing.status == 1 && missing.stderr == "error: hymba_model_open: /nonexistent.hymba: open failed: No such file or directory\n")
        #expect(try LibHymba.run(exe, []).status == 64)
        #expect(try LibHymba.run(exe, ["--temp", "hot", "x"]).status == 64)
    }

    @Test("tools/install-libhymba.sh installs library, header and hymba.pc; pkg-config builds the example")
    func installAndPkgConfig() throws {
        let lib = try LibHymba.library()
        let prefix = LibHymba.temporaryDirectory + "/prefix"
        let install = try LibHymba.run(LibHymba.repo("tools/install-libhymba.sh"), [prefix, "--no-build"],
                                       environment: ["HYMBA_BUILD_DIR": (lib as NSString).deletingLastPathComponent])
        #expect(install.status == 0, "\(install.stderr)")
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: prefix + "/include/hymba.h") && fm.fileExists(atPath: prefix + "/lib/" + LibHymba.libraryName))
        let env = ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"]
        let version = try LibHymba.run("pkg-config", ["--modversion", "hymba"], environment: env)
        #expect(version.stdout == "\(HYMBA_VERSION_MAJOR).\(HYMBA_VERSION_MINOR).\(HYMBA_VERSION_PATCH)\n")
        let flags = try LibHymba.run("pkg-config", ["--cflags", "--libs", "hymba"], environment: env)
        #expect(flags.status == 0, "\(flags.stderr)")
        let exe = LibHymba.temporaryDirectory + "/generate-pkgconfig"
        let args = ["-std=c11", "-Wall", "-Werror", LibHymba.repo("Examples/c/generate.c"), "-o", exe]
            + flags.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        let cc = try LibHymba.run("cc", args)
        #expect(cc.status == 0, "\(cc.stderr)")
        // Linked against the installed copy (its rpath), not the build directory's.
        let ldd = try LibHymba.run("ldd", [exe])
        #expect(ldd.stdout.contains(prefix + "/lib/" + LibHymba.libraryName), "\(ldd.stdout)")
        let r = try LibHymba.run(exe, ["-m", LibHymba.modelPath, "-n", "12", LibHymba.prompts[1]])
        let want = try LibHymba.swiftGreedy(LibHymba.prompts[1], maxTokens: 12)
        #expect(r.status == 0 && r.stdout == want.text + "\n")
    }

    @Test("hymba.h compiles as C++ (extern \"C\") and as C99")
    func headerLanguages() throws {
        let source = LibHymba.temporaryDirectory + "/header-check.cpp"
        try """
        #include <hymba.h>
        static int32_t cb(const char *piece, int32_t token, void *user) { (void)piece; (void)token; (void)user; return 0; }
        int main() {
            hymba_token_callback f = cb;
            hymba_sampling_params p = hymba_sampling_default_params();
            return (f != 0 && p.max_tokens > 0 && hymba_generate(0, "", &p, f, 0) == HYMBA_ERR_INVALID_ARGUMENT) ? 0 : 1;
        }
        """.write(toFile: source, atomically: true, encoding: .utf8)
        let lib = try LibHymba.library()
        let dir = (lib as NSString).deletingLastPathComponent
        let exe = LibHymba.temporaryDirectory + "/header-check"
        let cxx = try LibHymba.run("c++", ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", LibHymba.repo("include"),
                                           source, "-L", dir, "-lhymba", "-Wl,-rpath," + dir, "-o", exe])
        #expect(cxx.status == 0, "\(cxx.stderr)")
        // The C++ program links against the C symbols (no name mangling) and runs.
        #expect(try LibHymba.run(exe, []).status == 0)
        let c99 = try LibHymba.run("cc", ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
                                          "-I", LibHymba.repo("include"), "-x", "c", source])
        #expect(c99.status == 0, "\(c99.stderr)")
    }

    @Test("struct layouts: the C compiler's, Swift's (libhymba's side) and Python ctypes' agree")
    func layouts() throws {
        let exe = try LibHymba.compileC([LibHymba.cSources + "/layout.c"], output: "layout")
        let r = try LibHymba.run(exe, [])
        #expect(r.status == 0)
        var c: [String: Int] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            c[String(parts[0])] = Int(parts[1])
        }
        let swift: [String: Int] = [
            "hymba_status": MemoryLayout<hymba_status>.size,
            "hymba_model_params": MemoryLayout<hymba_model_params>.size,
            "hymba_model_params.memory_budget_bytes": MemoryLayout<hymba_model_params>.offset(of: \.memory_budget_bytes)!,
            "hymba_model_params.threads": MemoryLayout<hymba_model_params>.offset(of: \.threads)!,
            "hymba_model_params.verify_checksums": MemoryLayout<hymba_model_params>.offset(of: \.verify_checksums)!,
            "hymba_context_params": MemoryLayout<hymba_context_params>.size,
            "hymba_context_params.n_ctx": MemoryLayout<hymba_context_params>.offset(of: \.n_ctx)!,
            "hymba_context_params.kv_type": MemoryLayout<hymba_context_params>.offset(of: \.kv_type)!,
            "hymba_sampling_params": MemoryLayout<hymba_sampling_params>.size,
            "hymba_sampling_params.temperature": MemoryLayout<hymba_sampling_params>.offset(of: \.temperature)!,
            "hymba_sampling_params.top_k": MemoryLayout<hymba_sampling_params>.offset(of: \.top_k)!,
            "hymba_sampling_params.top_p": MemoryLayout<hymba_sampling_params>.offset(of: \.top_p)!,
            "hymba_sampling_params.min_p": MemoryLayout<hymba_sampling_params>.offset(of: \.min_p)!,
            "hymba_sampling_params.repeat_penalty": MemoryLayout<hymba_sampling_params>.offset(of: \.repeat_penalty)!,
            "hymba_sampling_params.repeat_last_n": MemoryLayout<hymba_sampling_params>.offset(of: \.repeat_last_n)!,
            "hymba_sampling_params.seed": MemoryLayout<hymba_sampling_params>.offset(of: \.seed)!,
            "hymba_sampling_params.max_tokens": MemoryLayout<hymba_sampling_params>.offset(of: \.max_tokens)!,
        ]
        #expect(c == swift)
        #expect(c["hymba_sampling_params"] == 40 && c["hymba_model_params"] == 16 && c["hymba_context_params"] == 8)

        // The Python example's ctypes mirrors.
        let script = """
        import ctypes, sys
        sys.path.insert(0, sys.argv[1])
        import generate as g
        for struct, prefix in ((g.ModelParams, "hymba_model_params"), (g.ContextParams, "hymba_context_params"),
                               (g.SamplingParams, "hymba_sampling_params")):
            print(prefix, ctypes.sizeof(struct))
            for name, _ in struct._fields_:
                print(prefix + "." + name, getattr(struct, name).offset)
        """
        let py = try LibHymba.run("python3", ["-c", script, LibHymba.repo("Examples/python")])
        #expect(py.status == 0, "\(py.stderr)")
        var pyLayout: [String: Int] = [:]
        for line in py.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            pyLayout[String(parts[0])] = Int(parts[1])
        }
        var cWithoutStatus = c
        cWithoutStatus["hymba_status"] = nil
        #expect(pyLayout == cWithoutStatus)
    }

    @Test("the C API from C: NULL pointers, freed handles, wrong-order and reentrant calls, buffer sizes, statuses")
    func apiChecks() throws {
        let exe = try LibHymba.compileC([LibHymba.cSources + "/api_checks.c"], output: "api_checks")
        let garbage = LibHymba.temporaryDirectory + "/garbage.hymba"
        try Data("this is not a model file, but long enough to have a header of 128 bytes? no: it is shorter".utf8)
            .write(to: URL(fileURLWithPath: garbage))
        // A copy of the model with one byte flipped inside a chunk of stored tensor data.
        let corrupt = LibHymba.temporaryDirectory + "/corrupt.hymba"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: LibHymba.modelPath))
        let entry = try #require(try HymbaFile(path: LibHymba.modelPath).entry("model.layers.1.mamba.out_proj.weight"))
        let chunk = try #require(entry.chunks.first)
        bytes[Int(chunk.storedOffset + chunk.storedLength / 2)] ^= 0x5A
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        let r = try LibHymba.run(exe, [LibHymba.modelPath, garbage, corrupt, try LibHymba.modelWithoutTokenizer()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix(" checks passed\n") && r.stderr.isEmpty, "\(r.stdout)\(r.stderr)")
    }

    @Test("hymba_state_*: restored contexts continue bitwise; the size convention; hostile bytes and files refused")
    func savedState() throws {
        let exe = try LibHymba.compileC([LibHymba.cSources + "/state.c"], output: "state")
        let r = try LibHymba.run(exe, [LibHymba.modelPath, LibHymba.temporaryDirectory])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix(" checks passed\n") && r.stderr.isEmpty, "\(r.stdout)\(r.stderr)")
    }

    @Test("two contexts on one model, from two threads at once: bitwise the single-threaded logits and tokens")
    func twoThreads() throws {
        let exe = try LibHymba.compileC([LibHymba.cSources + "/threads.c"], output: "threads")
        let r = try LibHymba.run(exe, [LibHymba.modelPath, "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 threads x 3 rounds: logits bitwise equal, tokens identical"), "\(r.stdout)")
        // Its single-threaded reference is what the Swift API generates.
        for (i, prompt) in LibHymba.prompts.enumerated() {
            let want = try LibHymba.swiftGreedy(prompt, maxTokens: 16).tokens.map(String.init).joined(separator: " ")
            #expect(r.stdout.contains("prompt \(i): \(want)\n"), "\(r.stdout)")
        }
    }

    @Test("every streamed piece is valid UTF-8, byte-fallback tokens included; the text and tokens are the Swift API's")
    func piecesAreUTF8() throws {
        let exe = try LibHymba.compileC([LibHymba.cSources + "/pieces.c"], output: "pieces")
        // At temperature 3 with every filter off, the draws spread over the whole vocabulary,
        // so byte tokens (<0xNN>, many of them lone UTF-8 continuation bytes) come up.
        let prompt = "Hello", seed: UInt64 = 7, count = 200
        let r = try LibHymba.run(exe, [LibHymba.modelPath, prompt, "\(count)", "3", "\(seed)"])
        #expect(r.status == 0, "\(r.stderr)")
        var tokens: [Int32] = [], text = ""
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            let token = try #require(Int32(parts[0]))
            var piece: [UInt8] = []
            if parts[1] != "-" {
                let hex = Array(parts[1].utf8)
                for i in stride(from: 0, to: hex.count, by: 2) { piece.append(UInt8(String(decoding: hex[i..<(i + 2)], as: UTF8.self), radix: 16)!) }
            }
            let valid = String(validating: piece, as: UTF8.self)
            #expect(valid != nil, "token \(token): piece \(piece) is not valid UTF-8")
            if token >= 0 { tokens.append(token) }
            text += valid ?? ""
        }
        let model = try LibHymba.model.get()
        let want = try model.makeSession().generate(
            prompt, sampling: Sampling(temperature: 3, topK: 0, topP: 1, minP: 0, seed: seed, maxTokens: count)) { _ in .continue }
        let eos = model.textModel.endOfSequence
        #expect(tokens == want.tokens.filter { !eos.contains($0) } && text == want.text)
        let byteTokens = tokens.filter { model.textModel.tokenizer.piece(for: $0).map(ContinuationDecoder.isBytePiece) ?? false }
        #expect(byteTokens.count >= 1, "the draw should include byte-fallback tokens")
        #expect(text.unicodeScalars.contains("\u{FFFD}") || text.unicodeScalars.contains { $0.value >= 0x80 })
    }

    @Test("Examples/python/generate.py (ctypes) streams the greedy text the Swift API generates")
    func pythonExample() throws {
        let lib = try LibHymba.library()
        for prompt in LibHymba.prompts {
            let want = try LibHymba.swiftGreedy(prompt, maxTokens: 24)
            let r = try LibHymba.run("python3", [LibHymba.repo("Examples/python/generate.py"), "--lib", lib, "-n", "24", prompt])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == want.text + "\n")
            #expect(r.stderr.hasPrefix("[24 tokens generated, \(want.promptTokens + 24) held by the context; libhymba 0.1.0]"))
        }
        // HYMBA_LIB instead of --lib; an error is reported with its status.
        let r = try LibHymba.run("python3", [LibHymba.repo("Examples/python/generate.py"), "-m", "/nonexistent.hymba", "x"],
                                 environment: ["HYMBA_LIB": lib])
        #expect(r.status == 1 && r.stderr.contains("open failed: No such file or directory (status 2)"), "\(r.stderr)")
        // A library that cannot be loaded: one line saying how to build it or point to it, no traceback.
        let noLib = try LibHymba.run("python3", [LibHymba.repo("Examples/python/generate.py"), "x"],
                                     environment: ["HYMBA_LIB": "/nonexistent/libhymba.so"])
        #expect(noLib.status == 1 && !noLib.stderr.contains("Traceback"), "\(noLib.stderr)")
        #expect(noLib.stderr.hasPrefix("error: cannot load /nonexistent/libhymba.so") && noLib.stderr.contains("HYMBA_LIB"))
    }
}
