// Test-only: what a test did not run, and on which kernels it ran, said in the test output.

/// Lines in the test output for what a pass does not show by itself: a test (or part of one)
/// that did not run here and why (a debug build, a CPU without the kernel, pages that are not
/// 4 KiB), and the kernels a numeric test ran on. Both go to stdout, where `swift test` shows
/// them next to the test's name.
public enum TestNotes {
    /// Prints `[test] skipped: why`.
    public static func skipped(_ test: String, _ why: String) {
        print("[\(test)] skipped: \(why)")
    }

    /// Prints `[test] kernel: name`.
    public static func kernel(_ test: String, _ name: String) {
        print("[\(test)] kernel: \(name)")
    }
}
