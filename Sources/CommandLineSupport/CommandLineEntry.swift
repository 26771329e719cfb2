import ArgumentParser
import Foundation
import HymbaRuntime

/// The entry point of `hymba-edge` and `hymba-convert`, with one convention for both:
/// - a usage error (bad or missing option, value out of range, unknown command) prints the
///   problem and the usage line of the command that was run, and exits with 64 (`EX_USAGE`);
/// - a runtime failure (unreadable file, bad model, budget too small) prints one `error:`
///   line and exits with 1.
/// A `ValidationError` thrown by `run()` is a usage error too: ArgumentParser would print the
/// root command's usage for it, so it is reported here with the subcommand's.
public enum CommandLineEntry {
    /// Exit status of usage errors (`EX_USAGE` of sysexits.h, as ArgumentParser uses).
    public static let usageExitCode: Int32 = 64
    /// Exit status of runtime failures.
    public static let failureExitCode: Int32 = 1

    /// Parses the process's arguments as `Root` and runs the command. `pathCommand`: the
    /// default subcommand takes a path as first argument (hymba-convert CHECKPOINT), so a
    /// first word that names an existing file or directory, or looks like a path, is not an
    /// unknown command. Async commands (`hymba-edge serve`) run in the async context.
    public static func main<Root: ParsableCommand>(_ root: Root.Type, pathCommand: Bool = false) async -> Never {
        refuseArgumentsThatAreNotUTF8()
        // A closed pipe (`hymba-edge run | head`) is a failed write (EPIPE) that the commands
        // handle, not a signal that kills the process mid-line.
        signal(SIGPIPE, SIG_IGN)
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let word = arguments.first, let message = unknownCommand(word, of: root, pathCommand: pathCommand) {
            writeError("Error: \(message)\nUsage: \(root._commandName) <subcommand>\n  See '\(root._commandName) --help' for more information.\n")
            exit(usageExitCode)
        }
        var command: ParsableCommand
        do { command = try root.parseAsRoot(arguments) } catch { root.exit(withError: error) }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let e as ValidationError {
            let sub = type(of: command)
            let name = sub == root ? root._commandName : "\(root._commandName) \(sub._commandName)"
            writeError("Error: \(e.message)\nUsage: \(root.usageString(for: sub))\n  See '\(name) --help' for more information.\n")
            exit(usageExitCode)
        } catch {
            root.exit(withError: error)
        }
        exit(0)
    }

    /// The message for a first argument that is neither an option nor a subcommand (nil: it is fine).
    static func unknownCommand<Root: ParsableCommand>(_ word: String, of root: Root.Type, pathCommand: Bool) -> String? {
        let names = root.configuration.subcommands.map { $0._commandName } + ["help"]
        if word.hasPrefix("-") || names.contains(word) { return nil }
        // A word with a slash or a dot is a path, missing or not (its command says so).
        if pathCommand && (word.contains("/") || word.contains(".") || FileManager.default.fileExists(atPath: word)) { return nil }
        let list = root.configuration.subcommands.map { $0._commandName }.joined(separator: ", ")
        return "unknown command '\(word)' (commands: \(list))"
            + (pathCommand ? "; and no file or directory '\(word)' to convert" : "")
    }

    /// Arguments are decoded with repair by the standard library (a bad byte becomes U+FFFD), so a
    /// prompt given with -p that is not UTF-8 would run as other text: refused here, before parsing.
    static func refuseArgumentsThatAreNotUTF8() {
        for i in 1..<Int(CommandLine.argc) {
            guard let arg = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeRawBufferPointer(start: arg, count: strlen(arg))
            do { _ = try UTF8Text.decode(bytes, source: "argument \(i)") } catch {
                writeError("error: \(error)\n")
                exit(failureExitCode)
            }
        }
    }
}

/// Runs `body`, turning a library error into one `error:` line on stderr and exit status 1;
/// usage errors (`ValidationError`) and exit codes pass through to `CommandLineEntry`.
public func runReportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ValidationError { throw e } catch let e as ExitCode { throw e } catch {
        writeError("error: \(error)\n")
        throw ExitCode(CommandLineEntry.failureExitCode)
    }
}

/// Writes to stderr, unbuffered.
public func writeError(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}
