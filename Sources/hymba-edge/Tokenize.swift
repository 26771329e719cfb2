import ArgumentParser
import CommandLineSupport
import Foundation
import HymbaFormat
import HymbaRuntime

/// `hymba-edge tokenize`: text → token ids with the model file's tokenizer.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of a text as a JSON array.")

    @Option(name: .shortAndLong, help: "The .hymba model file (its tokenizer is used).")
    var model: String

    @Option(name: .long, help: "The text to tokenize.")
    var text: String?

    @Option(name: [.customShort("f"), .long], help: "A file whose contents to tokenize (UTF-8; - for stdin).")
    var file: String?

    @Flag(name: .customLong("no-bos"), help: "Do not put the BOS token first.")
    var noBOS = false

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give exactly one of --text TEXT or --file PATH") }
    }

    func run() throws {
        try runReportingErrors {
            let tokenizer = try TextModel.tokenizer(of: HymbaFile(path: model, verifyChecksums: false))
            var input = text ?? ""
            if let file {
                input = try UTF8Text.decode(FileArgument.read(file, what: "the text"), source: FileArgument.name(file))
            }
            let ids = tokenizer.encode(input, addBOS: noBOS ? false : nil)
            print("[" + ids.map { String($0) }.joined(separator: ", ") + "]")
        }
    }
}

/// `hymba-edge detokenize`: token ids → text.
struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the text of comma-separated token ids.")

    @Option(name: .shortAndLong, help: "The .hymba model file (its tokenizer is used).")
    var model: String

    @Option(name: .long, help: "Comma-separated token ids, e.g. 1,822,18755.")
    var ids: String

    @Flag(name: .long, help: "Keep special tokens (<s>, </s>, ...) in the text.")
    var special = false

    func run() throws {
        try runReportingErrors {
            let list = try Self.parseIDs(ids)
            let tokenizer = try TextModel.tokenizer(of: HymbaFile(path: model, verifyChecksums: false))
            for (i, id) in list.enumerated() where id < 0 || id >= tokenizer.vocabularySize {
                throw ValidationError("--ids: entry \(i) (\(id)) is outside the vocabulary 0..<\(tokenizer.vocabularySize)")
            }
            print(tokenizer.decode(list.map { Int32($0) }, skipSpecial: !special))
        }
    }
}

extension Detokenize {
    static func parseIDs(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count == 1 && parts[0].isEmpty { return [] }
        return try parts.enumerated().map { i, p in
            guard let v = Int(p) else { throw ValidationError("--ids: entry \(i) \"\(p)\" is not an integer") }
            return v
        }
    }
}
