// Test-only: where tests write files, and the promise that a test run leaves nothing behind.
import Foundation

/// Directories for the files tests write (converted models, checkpoints, saved sessions).
///
/// Every directory lives under one root per test process, `$TMPDIR/hymba-tests-<pid>`, and the
/// root is removed when the process exits. A run that crashed or was killed cannot remove its
/// own root, so the next run removes the roots of processes that no longer exist. Without this
/// every run of the suite left about 1.6 GB in /tmp, and a machine that ran it often enough
/// filled its disk.
public enum ScratchDirectory {
    static let prefix = "hymba-tests-"

    /// This process's root, created (and the roots of dead runs removed) on first use.
    public static let root: String = {
        let base = NSTemporaryDirectory()
        removeRootsOfFinishedRuns(in: base)
        let dir = base + prefix + "\(getpid())"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: ScratchDirectory.root) }
        return dir
    }()

    /// A new empty directory under the root, named after `label` so a failing test's files are
    /// easy to find while the process still runs.
    public static func make(_ label: String) -> String {
        let dir = root + "/\(label)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Removes `hymba-tests-<pid>` roots whose process is gone. A live process, or a pid that
    /// was reused by another process, keeps its directory: `kill(pid, 0)` fails with ESRCH only
    /// when no process has that pid.
    public static func removeRootsOfFinishedRuns(in base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) == -1 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: base + name)
            }
        }
    }
}
