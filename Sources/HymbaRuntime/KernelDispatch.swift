import CCPUID
import Foundation
import HymbaKernels
import HymbaKernelsPortable
#if arch(x86_64)
import HymbaKernelsX86AVX2
import HymbaKernelsX86AVX512
#endif

/// The one place that decides which kernel backend runs (README "Kernel backends").
///
/// A build carries every backend of its architecture (Package.swift); at start-up the best one
/// this CPU can run is chosen: on x86-64, AVX-512 VNNI+BW+VL (with the OS saving the ZMM
/// state) → `avx512`, else AVX2+FMA+F16C (YMM state saved) → `avx2`, else `portable`. A CPU
/// with AVX-512F but no VNNI (Skylake-X) gets `avx2`. The environment variable
/// `HYMBA_BACKEND=portable|avx2|avx512` forces one, and is refused (with one line saying
/// why) when the build lacks it or the CPU cannot run it. Sessions can also ask for a backend
/// by name (`HymbaOptions.kernels`), which tests use to run everything on every backend.
public enum KernelDispatch {
    /// The environment variable that forces a backend.
    public static let environmentVariable = "HYMBA_BACKEND"

    /// The backends this build carries, best first.
    public static var compiled: [KernelBackendName] {
        #if arch(x86_64)
        return [.avx512, .avx2, .portable]
        #else
        return [.portable]
        #endif
    }

    /// Whether this CPU (and OS) can run `name`'s instructions.
    public static func cpuCanRun(_ name: KernelBackendName) -> Bool {
        switch name {
        case .portable: return true
        case .avx2: return hymba_cpu_has_avx2_backend() != 0
        case .avx512: return hymba_cpu_has_avx512_backend() != 0
        }
    }

    /// The backends this build carries that this CPU can run, best first.
    public static let runnable: [KernelBackendName] = compiled.filter(cpuCanRun)

    /// The backend sessions use unless their options name one: `HYMBA_BACKEND`'s, else the
    /// best runnable one. A refused `HYMBA_BACKEND` makes every session creation fail with its
    /// error (the command-line tools check it first and exit).
    public static let selection: Result<KernelBackendName, HymbaRuntimeError> = {
        guard let forced = ProcessInfo.processInfo.environment[environmentVariable], !forced.isEmpty else {
            return .success(runnable[0])
        }
        return Result { try resolve(forced, source: "\(environmentVariable)=\(forced)") }
            .mapError { $0 as! HymbaRuntimeError }
    }()

    /// The process's backend (`selection`), or its error.
    public static func selected() throws -> KernelBackendName { try selection.get() }

    /// `text` as a backend this build has and this CPU can run; `source` names where it came
    /// from in the error.
    public static func resolve(_ text: String, source: String) throws -> KernelBackendName {
        guard let name = KernelBackendName(rawValue: text) else {
            throw HymbaRuntimeError.invalidOption(
                "\(source): no such kernel backend (known: \(KernelBackendName.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        try check(name, source: source)
        return name
    }

    /// Throws unless this build carries `name` and this CPU can run it.
    public static func check(_ name: KernelBackendName, source: String) throws {
        guard compiled.contains(name) else {
            throw HymbaRuntimeError.invalidOption(
                "\(source): this build has no \(name) kernels (it has: \(compiled.map(\.rawValue).joined(separator: ", ")))")
        }
        guard runnable.contains(name) else {
            throw HymbaRuntimeError.invalidOption(
                "\(source): this CPU cannot run the \(name) kernels (it lacks \(requirements(name))); it can run: \(runnable.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// The kernels of `name` (nil: the process's selection), checked as `check` does.
    package static func kernels(_ name: KernelBackendName?) throws -> any KernelBackend.Type {
        let chosen: KernelBackendName
        if let name {
            try check(name, source: "kernel backend \(name)")
            chosen = name
        } else {
            chosen = try selected()
        }
        switch chosen {
        case .portable: return PortableKernels.self
        #if arch(x86_64)
        case .avx2: return AVX2Kernels.self
        case .avx512: return AVX512Kernels.self
        #else
        case .avx2, .avx512: preconditionFailure("checked above: \(chosen) is not in this build")
        #endif
        }
    }

    /// One line naming the backends this build carries and the one in use, for `--version`,
    /// `info` and `bench`: "kernels: avx512, avx2, portable (in use: avx512)".
    public static func summary() -> String {
        let inUse: String
        switch selection {
        case let .success(name): inUse = name.rawValue
        case .failure: inUse = "none: \(environmentVariable) refused"
        }
        return "kernels: \(compiled.map(\.rawValue).joined(separator: ", ")) (in use: \(inUse))"
    }

    /// The instruction sets `name` needs, as people know them.
    static func requirements(_ name: KernelBackendName) -> String {
        switch name {
        case .portable: return "nothing"
        case .avx2: return "AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE or the OS's YMM state"
        case .avx512: return "AVX-512 F/CD/BW/DQ/VL with VNNI or the OS's ZMM state"
        }
    }
}
