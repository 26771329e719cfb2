import AsyncHTTPClient
import Foundation
import HymbaRuntime
import HymbaServer
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The repository's shipped model (the server tests' model).
let shippedModel: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("models/tiny-code-hymba-q8.hymba")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate.path }
    }
    fatalError("models/tiny-code-hymba-q8.hymba not found above \(#filePath)")
}()

/// A server on an ephemeral loopback port, started for a test and stopped after it.
final class RunningServer: @unchecked Sendable {
    let server: HymbaServer
    let task: Task<Void, Error>
    let port: Int
    let readyLine: String
    let client = HTTPClient(eventLoopGroupProvider: .singleton)

    /// Starts `configuration` on port 0 and waits (at most 120 s) for its ready line.
    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var c = ServerConfiguration(modelPath: shippedModel)
        c.port = 0
        c.contextLength = 256
        c.threads = 2
        configure(&c)
        let server = HymbaServer(configuration: c)
        let ready = AsyncStream<String>.makeStream()
        // A server that fails to start ends the ready stream, then its task has the error.
        let task = Task {
            defer { ready.continuation.finish() }
            try await server.run { ready.continuation.yield($0) }
        }
        let line = await withTaskGroup(of: String?.self) { group in
            group.addTask { for await line in ready.stream { return line }; return nil }
            group.addTask { try? await Task.sleep(for: .seconds(120)); return nil }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
        guard let line else {
            task.cancel()
            try await task.value
            throw HarnessError("the server did not become ready in 120 s")
        }
        guard let port = server.port else { throw HarnessError("the server has no port") }
        return RunningServer(server: server, task: task, port: port, readyLine: line)
    }

    private init(server: HymbaServer, task: Task<Void, Error>, port: Int, readyLine: String) {
        self.server = server
        self.task = task
        self.port = port
        self.readyLine = readyLine
    }

    func stop() async {
        try? await client.shutdown()
        task.cancel()
        _ = try? await task.value
    }

    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        /// The `data:` payloads of an SSE body, in order.
        var events: [String] {
            body.components(separatedBy: "\n\n").compactMap { block in
                block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
            }
        }
        var eventObjects: [[String: Any]] {
            events.filter { $0 != "[DONE]" }.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:] }
        }
        var errorObject: [String: Any]? { json["error"] as? [String: Any] }
    }

    func request(_ method: HTTPMethod, _ path: String, json: Any? = nil, raw: String? = nil,
                 headers: [(String, String)] = []) async throws -> Reply {
        var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        r.method = method
        for (k, v) in headers { r.headers.add(name: k, value: v) }
        if let json {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let raw {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(string: raw))
        }
        let response = try await client.execute(r, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 1 << 24)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }

    /// The server's /metrics value of `name` (no labels).
    func metric(_ name: String) async throws -> Double? {
        let text = try await request(.GET, "/metrics").body
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ")[1])
        }
        return nil
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A plain TCP connection to the server, for what an HTTP client library hides: hanging up in
/// the middle of a streamed answer, holding a request open.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw HarnessError("connect to 127.0.0.1:\(port) failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends a POST of `json` to `path`.
    func post(_ path: String, json: String) {
        let request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until `marker` has arrived (or 30 s pass); returns what was read.
    func read(until marker: String) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.contains(marker) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return text
    }

    func hangUp() { close(fd) }

    /// Waits (at most 30 s) for the server to close the connection, reading and dropping what
    /// arrives; true when it did (end of stream), false on the timeout or an error.
    func waitForClose() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }
}
