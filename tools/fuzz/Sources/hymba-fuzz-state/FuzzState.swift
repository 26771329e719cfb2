import CFuzzerDriver
import Foundation
import HymbaFormat
import HymbaRuntime

/// The libFuzzer harness for saved states (formats/HYMBA-STATE.md): every input is a candidate
/// state file offered to sessions of one nano model. `--make-seeds DIR` writes valid states to
/// start from instead of fuzzing.
@main enum FuzzState {
    static func main() {
        if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--make-seeds" {
            makeSeeds(CommandLine.arguments[2])
            return
        }
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzOneInput($0, size) } ?? 0 })
    }
}

/// The model the states belong to: `HYMBA_FUZZ_STATE_MODEL`, else the seed corpus' nano f32 file.
let model: HymbaModel = {
    let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = ProcessInfo.processInfo.environment["HYMBA_FUZZ_STATE_MODEL"] ?? here.appendingPathComponent("corpus-seed/nano-zstd-f32.hymba").path
    do { return try HymbaModel(file: HymbaFile(path: path)) } catch {
        FileHandle.standardError.write("hymba-fuzz-state: cannot open the model \(path): \(error) (run tools/fuzz/make-seeds.sh first)\n".data(using: .utf8)!)
        exit(2)
    }
}()

/// The sessions inputs are offered to: one per KV type, the options the seeds were saved with.
let sessions: [HymbaSession] = KVType.allCases.map {
    try! HymbaSession(model: model, options: HymbaOptions(contextLength: min(48, model.config.maxPositionEmbeddings),
                                                          kvType: $0, prefillChunk: 4, threads: 1))
}

/// libFuzzer's callback: the input as given, then with its header and section checksums
/// recomputed so mutations reach the field checks behind them. Refusing is the expected result;
/// a crash, sanitizer report, hang or leak is a finding. An accepted state must leave a session
/// that can go on (rewind to its snapshots, decode a token).
func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    exercise(bytes)
    if resign(&bytes) { exercise(bytes) }
    return 0
}

func exercise(_ bytes: [UInt8]) {
    for s in sessions {
        s.reset()
        do {
            // An exactly sized heap copy, so AddressSanitizer sees any read past the end.
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
            defer { copy.deallocate() }
            if !bytes.isEmpty { copy.copyMemory(from: UnsafeRawBufferPointer(start: bytes, count: bytes.count)) }
            let extras = try s.restoreState(from: UnsafeRawBufferPointer(copy), source: "fuzz")
            if let last = extras.snapshots.last { try s.rewind(to: last) }
            if s.position < s.contextLength { try s.decode(token: 1) }
        } catch {
            _ = "\(error)"  // every error must at least describe itself
        }
    }
}

/// Recomputes every section's checksum (walking the section headers as far as they lie in the
/// bytes) and the header checksum. False when the input is too short to have a header.
func resign(_ b: inout [UInt8]) -> Bool {
    guard b.count >= 80 else { return false }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
    func set(_ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
    set(72, b.withUnsafeBytes { XXHash64.hash($0.baseAddress!, count: 72) })
    var offset = 80
    while offset + 24 <= b.count {
        let length = u64(offset + 8)
        guard length <= UInt64(b.count - offset - 24) else { break }
        set(offset + 16, b.withUnsafeBytes { XXHash64.hash($0.baseAddress! + offset + 24, count: Int(length)) })
        offset += 24 + Int(length)
    }
    return true
}

/// Valid states of each session: empty, after a prefill, after the windows wrapped with
/// snapshots and a text.
func makeSeeds(_ directory: String) {
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (i, s) in sessions.enumerated() {
        s.reset()
        try! s.saveState(to: directory + "/state-\(i)-empty")
        try! s.prefill(tokens: [1, 5, 9, 13, 3, 7])
        try! s.saveState(to: directory + "/state-\(i)-prefill")
        let snapshot = s.takeSnapshot()
        for t in 0..<(s.contextLength - 10) { try! s.decode(token: (t * 7 + 3) % model.config.vocabSize) }
        try! s.saveState(to: directory + "/state-\(i)-wrapped", SavedStateExtras(snapshots: [snapshot], text: Array("{\"pending\":2}".utf8)))
    }
    print("\(directory): \(3 * sessions.count) seed states")
}
