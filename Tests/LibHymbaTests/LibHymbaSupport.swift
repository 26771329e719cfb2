import Foundation
import HymbaTestSupport
import HymbaConverter
import HymbaFormat
import HymbaKit
import Testing

/// Paths, the built library, and running the system C compiler and the programs it builds.
enum LibHymba {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static func repo(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }
    static var cSources: String { testsDirectory.appendingPathComponent("C").path }
    static let modelPath = repo("models/tiny-code-hymba-q8.hymba")
    static let prompts = ["def fibonacci(n):\n", "import os\nimport sys\n\n\nclass "]

    /// The build's products directory: where the test bundle is, next to libhymba.so.
    static let buildDirectory: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
        return dir.path
    }()

    #if os(macOS)
    static let libraryName = "libhymba.dylib"
    #else
    static let libraryName = "libhymba.so"
    #endif

    /// The built library; a clear failure when it is missing.
    static func library() throws -> String {
        let path = buildDirectory + "/" + libraryName
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure("\(libraryName) is not built at \(path): `swift build` (or `swift build --product hymba` with the same -c) builds it")
        }
        return path
    }

    static let temporaryDirectory = ScratchDirectory.make("libhymba")

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutData: Data
    }

    /// Runs `executable` (a path, or a name looked up on PATH) and collects its output.
    static func run(_ executable: String, _ arguments: [String], directory: String? = nil,
                    environment: [String: String] = [:]) throws -> Output {
        let p = Process()
        if executable.contains("/") {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [executable] + arguments
        }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes at once so neither can fill up and block the child.
        let errData = Locked()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errData.set(err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self), stdoutData: o)
    }

    /// Compiles C sources with the system compiler (`cc`, warnings as errors) against the
    /// built library and include/; returns the executable's path.
    static func compileC(_ sources: [String], output name: String, extraFlags: [String] = []) throws -> String {
        let lib = try library()
        let dir = (lib as NSString).deletingLastPathComponent
        let out = temporaryDirectory + "/" + name
        let args = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repo("include")] + sources
            + ["-L", dir, "-lhymba", "-Wl,-rpath," + dir, "-lpthread", "-o", out] + extraFlags
        let r = try run("cc", args)
        guard r.status == 0 else { throw Failure("cc \(args.joined(separator: " ")) failed:\n\(r.stderr)") }
        return out
    }

    /// The HymbaKit model over the example model, shared by the tests.
    static let model: Result<Model, Error> = Result { try Model(path: modelPath) }

    /// Greedy generation through the Swift API from a fresh session.
    static func swiftGreedy(_ prompt: String, maxTokens: Int) throws -> Completion {
        var s = Sampling.greedy
        s.maxTokens = maxTokens
        return try model.get().makeSession().generate(prompt, sampling: s) { _ in .continue }
    }

    /// tiny-code-hymba converted without its tokenizer (a file text generation cannot use).
    static func modelWithoutTokenizer() throws -> String {
        let out = temporaryDirectory + "/no-tokenizer.hymba"
        if FileManager.default.fileExists(atPath: out) { return out }
        let checkpoint = try Checkpoint(directory: repo("Tests/Fixtures/tiny-code-hymba"))
        var options = ConversionOptions()
        options.recipe = QuantizationRecipe(matrixType: .q8)
        _ = try Converter.convert(checkpoint: checkpoint, output: out, tokenizer: nil, options: options)
        return out
    }
}

final class Locked: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Data()
    func set(_ d: Data) { lock.lock(); value = d; lock.unlock() }
    var data: Data { lock.lock(); defer { lock.unlock() }; return value }
}
