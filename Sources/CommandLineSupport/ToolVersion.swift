import HymbaFormat
import HymbaRuntime

/// What `--version` prints: the release and the git commit the binary was built from, then
/// the kernel backends compiled in and the one in use, e.g.
/// `0.1.0 (commit 3f2a9c1b7d0e)` / `kernels: avx512, avx2, portable (in use: avx512)`.
///
/// The commit comes from `Plugins/BuildInfoPlugin` (git, at build time, on every build), so
/// a fresh clone reports it without any script; a build outside a git checkout says "unknown".
public enum ToolVersion {
    public static var text: String {
        "\(HymbaVersion.string) (commit \(buildCommit))\n\(KernelDispatch.summary())"
    }
}
