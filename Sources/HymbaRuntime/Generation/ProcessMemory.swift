import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory use of this process, for the statistics lines of the command-line tools.
public enum ProcessMemory {
    /// Peak resident set size in bytes: `VmHWM` of /proc/self/status on Linux, else
    /// `getrusage`'s `ru_maxrss` (kilobytes on Linux, bytes on macOS). nil if neither works.
    public static var peakResidentBytes: Int? {
        if let hwm = statusField("VmHWM:") { return hwm }
        var usage = rusage()
        #if os(Linux)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return nil }
        #if os(Linux)
        return Int(usage.ru_maxrss) * 1024
        #else
        return Int(usage.ru_maxrss)
        #endif
    }

    /// Current resident set size in bytes (`VmRSS`); nil where /proc is unavailable.
    public static var currentResidentBytes: Int? { statusField("VmRSS:") }

    /// Gives memory the allocator holds but no longer uses back to the system (glibc's
    /// `malloc_trim`: freed small blocks otherwise stay resident and count in the peak);
    /// nothing elsewhere. Called after loading, when large temporaries have been freed.
    public static func releaseFreedMemory() {
        _ = mallocTrim?(0)
    }

    /// glibc's `malloc_trim`, looked up at run time (Swift's Glibc module does not export
    /// malloc.h); nil with other C libraries.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// A "Name:   N kB" line of /proc/self/status, in bytes.
    private static func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 3, let kb = Int(fields[1]), fields[2] == "kB" { return kb * 1024 }
        }
        return nil
    }
}
