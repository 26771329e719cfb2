import CFuzzerDriver
import Foundation
import HymbaFormat
import HymbaRuntime

/// Hands the command line to libFuzzer (see CFuzzerDriver.h for why not libFuzzer's own main).
@main enum FuzzReader {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzOneInput($0, size) } ?? 0 })
    }
}

// libFuzzer's callback: every input is a candidate `.hymba` file. It goes through what a user
// of the library does with a file (open, verify, tokenizer and model load, tokenize, a short
// evaluation) twice: as given, and with its header, metadata and directory checksums
// recomputed and chunk checksums not checked, so that mutations reach the validation and the
// decoders behind the checksums. Any outcome but a crash, a sanitizer report, a hang or a
// leak is fine: refusing is the expected result for almost every input.
func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    exercise(bytes, verifyChecksums: true)
    if resign(&bytes) { exercise(bytes, verifyChecksums: false) }
    return 0
}

/// Open from memory (an exactly sized heap copy, so AddressSanitizer sees any read past the
/// end), then the same steps as the mutation test (Tests/HymbaRuntimeTests/HostileFileSupport.swift).
func exercise(_ bytes: [UInt8], verifyChecksums: Bool) {
    do {
        let mapping = bytes.withUnsafeBytes { MappedFile(copying: $0, name: "fuzz.hymba") }
        let file = try HymbaFile(mapping: mapping, verifyChecksums: verifyChecksums)
        _ = file.verify()
        let model: HymbaModel
        if file.metadata["tokenizer"] is [String: Any] {
            let text = try TextModel(file: file)
            let ids = text.encode("a b ab <tool> héllo\u{0}\u{FEFF}")
            _ = text.tokenizer.decode(ids, skipSpecial: false)
            model = text.model
        } else {
            model = try HymbaModel(file: file)
        }
        let c = model.config
        let session = try HymbaSession(model: model, options: HymbaOptions(
            contextLength: min(6, c.maxPositionEmbeddings), kvType: .f16, prefillChunk: 2, threads: 1))
        let ids = [1, 5, 9, 13, 3].prefix(session.contextLength).map { $0 % c.vocabSize }
        _ = try session.eval(ids: Array(ids), mode: .chunked(2))
        _ = try session.eval(ids: Array(ids.prefix(2)), mode: .incremental)
    } catch {
        _ = "\(error)"  // every error must at least describe itself
    }
}

/// Recomputes the metadata and directory checksums (where the header's ranges lie inside the
/// bytes) and the header checksum. False when the input is too short to have a header.
func resign(_ b: inout [UInt8]) -> Bool {
    guard b.count >= 128 else { return false }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
    func set(_ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
    let metaLen = u64(24), dirOff = u64(32), dirLen = u64(40)
    if metaLen <= UInt64(b.count - 128) {
        set(72, b.withUnsafeBytes { XXHash64.hash($0.baseAddress! + 128, count: Int(metaLen)) })
    }
    if dirOff <= UInt64(b.count), dirLen <= UInt64(b.count) - dirOff {
        set(80, b.withUnsafeBytes { XXHash64.hash($0.baseAddress! + Int(dirOff), count: Int(dirLen)) })
    }
    set(120, b.withUnsafeBytes { XXHash64.hash($0.baseAddress!, count: 120) })
    return true
}
