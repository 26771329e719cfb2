import Foundation
import HymbaTestSupport
import Testing

@Suite("Scratch directories")
struct ScratchDirectoryTests {
    /// A pid that no process has: a child that has exited and been reaped.
    static func finishedPid() throws -> pid_t {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        return child.processIdentifier
    }

    @Test("a finished run's root is removed; live processes keep theirs; other names are left alone")
    func sweep() throws {
        let base = ScratchDirectory.make("sweep") + "/"
        let finished = try Self.finishedPid()
        let names = ["hymba-tests-\(finished)", "hymba-tests-\(getpid())", "hymba-tests-1", "hymba-tests-x", "other-\(finished)"]
        for name in names {
            try FileManager.default.createDirectory(atPath: base + name + "/inner", withIntermediateDirectories: true)
        }
        ScratchDirectory.removeRootsOfFinishedRuns(in: base)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: base))
        #expect(left == Set(names.dropFirst()))
    }

    @Test("every directory is new, empty and under this process's root")
    func make() throws {
        let a = ScratchDirectory.make("t"), b = ScratchDirectory.make("t")
        #expect(a != b)
        #expect(a.hasPrefix(NSTemporaryDirectory() + "hymba-tests-\(getpid())/t-"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: a).isEmpty)
    }
}
