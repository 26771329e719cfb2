import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime
import HymbaServer

/// `hymba-edge serve`: the OpenAI-compatible HTTP server (HymbaServer) on one model.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over OpenAI's HTTP API (/v1/completions, /v1/chat/completions, SSE streaming), several requests at once.")

    /// -m, --ctx, --kv-type, --memory-budget (counting every slot), --threads, --no-verify.
    @OptionGroup var model: TextModelOptions

    @Option(name: .long, help: "Address to listen on (loopback by default; the server has no TLS).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "TCP port (0: any free port, printed in the ready line).")
    var port = 8080

    @Option(name: .long, help: "Slots: requests decoded at once (default: as many as the memory plan fits, at most 4).")
    var parallel: Int?

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint but /health.")
    var apiKey: String?

    @Option(name: .long, help: "Requests that may wait for a slot; beyond them: 503 with Retry-After.")
    var queue = 16

    @Option(name: .customLong("timeout"), help: "Seconds before an idle connection is closed.")
    var idleTimeout = 60

    func validate() throws {
        do { try serverConfiguration(path: model.model ?? "").validate() } catch let e as ServerError { throw ValidationError(e.description) }
    }

    func serverConfiguration(path: String) throws -> ServerConfiguration {
        var c = ServerConfiguration(modelPath: path)
        c.host = host
        c.port = port
        c.parallel = parallel
        c.contextLength = model.ctx
        c.kvType = try model.size.kv()
        c.memoryBudgetBytes = try model.size.budget()
        c.threads = model.threads
        c.apiKey = apiKey
        c.queueLimit = queue
        c.idleTimeoutSeconds = idleTimeout
        c.verifyChecksums = !model.size.noVerify
        return c
    }

    func run() async throws {
        do {
            let server = HymbaServer(configuration: try serverConfiguration(path: try model.model ?? DefaultModel.path()))
            try await server.run(handleSignals: true) { line in writeOut(line + "\n") }
        } catch let e as ValidationError { throw e } catch {
            writeErr("error: \(error)\n")
            throw ExitCode(1)
        }
    }
}
