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
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count >= 3, let kb = Int(fields[1]), fields[2] == "kB" { return kb * 1024 }
            }
        }
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
}
