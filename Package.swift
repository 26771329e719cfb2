// swift-tools-version:6.0
import Foundation
import PackageDescription

// Module map (one job each):
//   CZstd, CLZ4      system libraries (libzstd-dev, liblz4-dev) used by the chunk codecs
//   HymbaFormat      the .hymba file: layout, storage types (f32/f16/bf16/q8/q4), codecs,
//                    checksums, reader (memory-mapped) and writer; the model config
//   HymbaConverter   Hugging Face checkpoint -> .hymba (safetensors, validation, recipe, synthesize)
//   HymbaTokenizer   SentencePiece-style BPE tokenizer and streaming detokenizer
//   HymbaKernels, HymbaKernelsPortable, HymbaKernelsX86AVX2, HymbaKernelsX86AVX512
//                    the numeric kernels: the shared core (kernel table type, arranged inputs,
//                    SIMD reductions), the portable kernels, and one target per x86 backend
//   CCPUID           cpuid/xgetbv: which backends this CPU can run
//   HymbaRuntime     the Hymba forward pass over a mapped model file, caches, sampling, and the
//                    choice of kernel backend
//   HymbaKit         the small public Swift API for embedding (Model, Session, generate)
//   CHymba, HymbaC   include/hymba.h as a Clang module, and its @_cdecl implementation over
//                    HymbaKit: the product `hymba` is libhymba.so, the C ABI
//   CommandLineSupport          what both command-line tools share: the entry point (usage
//                               errors, exit codes, unknown commands), --version (with the git
//                               commit, recorded by Plugins/BuildInfoPlugin), stdin/stdout as "-"
//   CEditLine                   libedit (libedit-dev): line editing and history for `chat`
//   HymbaServer      the OpenAI-compatible HTTP server (`hymba-edge serve`) and its slot scheduler
//   hymba-convert, hymba-edge   thin command-line shells over the libraries

// Release builds target the vector units of the machine that builds (AVX2/AVX-512 on x86-64,
// NEON and more on arm64) unless told otherwise: HYMBA_TARGET_CPU picks another target (an
// LLVM CPU name such as haswell, icelake-server, neoverse-n1), or "generic" for the
// toolchain's portable baseline (on x86-64: one binary for every x86-64 CPU). The manifest is
// cached: after changing the variable, build in a fresh --scratch-path (or `swift package clean`).
let environment = ProcessInfo.processInfo.environment
let targetCPU = environment["HYMBA_TARGET_CPU"] ?? "native"
let cpuSettings: [SwiftSetting] = targetCPU == "generic" ? [] :
    [.unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .release))]

// Kernel backends (Sources/Kernels, README "Kernel backends"): each a target compiled for its
// own instruction set, whatever HYMBA_TARGET_CPU says, so that every build carries every
// backend of its architecture and the runtime picks the best one the CPU has at start-up
// (HymbaRuntime/KernelDispatch.swift). The shared core and the portable kernels use the
// build's baseline; their kernels are inlinable and compiled again inside each backend.
let kernelCore: [Target.Dependency] = ["HymbaFormat", "HymbaKernels"]
var kernelTargets: [Target] = [
    // The Builtin module gives the shared core LLVM's fmuladd: the kernels' multiply-add, fused
    // only where the target has a fused multiply-add (Kernels/Shared/MultiplyAdd.swift).
    .target(name: "HymbaKernels", dependencies: ["HymbaFormat", "CPrefetch"], path: "Sources/Kernels/Shared",
            swiftSettings: cpuSettings + [.enableExperimentalFeature("BuiltinModule")]),
    .target(name: "HymbaKernelsPortable", dependencies: kernelCore, path: "Sources/Kernels/Portable", swiftSettings: cpuSettings),
]
var kernelBackends: [Target.Dependency] = ["HymbaKernels", "HymbaKernelsPortable"]
#if arch(x86_64)
/// A target feature for LLVM's code generation (through Clang's options, which Swift's uses).
func clangFeature(_ feature: String) -> [String] {
    ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", feature]
}
func backendCPU(_ cpu: String, extra: [String] = []) -> [SwiftSetting] {
    [.unsafeFlags(["-target-cpu", cpu] + extra, .when(configuration: .release))]
}
kernelTargets += [
    // x86-64-v3: AVX2, FMA, F16C (Haswell and later, AMD Zen 1 and later).
    .target(name: "HymbaKernelsX86AVX2", dependencies: kernelCore + ["HymbaKernelsPortable"],
            path: "Sources/Kernels/X86AVX2", swiftSettings: backendCPU("haswell")),
    // AVX-512 F/CD/BW/DQ/VL + VNNI, nothing newer (Cascade Lake's set, so that Cascade Lake
    // and every later Intel and AMD Zen 4 CPU can run it). LLVM is also told that `vpdpwssd` is
    // fast ("fast-dpwssd"): otherwise its tuning rewrites about half of them into `vpmaddwd` +
    // `vpaddd`, twice the instructions, although they issue at the rate of FMAs (measured: 2 per
    // cycle). And not to prefer 256-bit vectors ("-prefer-256-bit", Cascade Lake's tuning): with
    // it, the 512-bit intrinsics were left as calls (`_mm512_mul_ps` ...) in the 16-lane exp and
    // softplus, and SIMD16 code was split into 256-bit halves.
    .target(name: "HymbaKernelsX86AVX512", dependencies: kernelCore + ["HymbaKernelsPortable"],
            path: "Sources/Kernels/X86AVX512",
            swiftSettings: backendCPU("cascadelake", extra: clangFeature("+fast-dpwssd") + clangFeature("-prefer-256-bit"))),
]
kernelBackends += ["HymbaKernelsX86AVX2", "HymbaKernelsX86AVX512"]
#endif
// An arm64 NEON backend would be one more entry here under #if arch(arm64) (README).

let package = Package(
    name: "hymba-edge",
    products: [
        .executable(name: "hymba-convert", targets: ["hymba-convert"]),
        .executable(name: "hymba-edge", targets: ["hymba-edge"]),
        .library(name: "HymbaFormat", targets: ["HymbaFormat"]),
        .library(name: "HymbaConverter", targets: ["HymbaConverter"]),
        .library(name: "HymbaRuntime", targets: ["HymbaRuntime"]),
        .library(name: "HymbaKit", targets: ["HymbaKit"]),
        .library(name: "hymba", type: .dynamic, targets: ["HymbaC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `hymba-edge serve`: the HTTP server (Hummingbird on SwiftNIO), and the HTTP client
        // its tests drive it with.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(
            name: "CLZ4", pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]),
        .target(name: "HymbaFormat", dependencies: ["CZstd", "CLZ4"], swiftSettings: cpuSettings),
        .target(name: "HymbaConverter", dependencies: ["HymbaFormat"], swiftSettings: cpuSettings),
        .target(name: "HymbaTokenizer", dependencies: ["HymbaFormat"], swiftSettings: cpuSettings),
        // Header-only Clang modules: the cache prefetch hint the decoding kernels use, and the
        // cpuid/xgetbv check the kernel dispatch uses.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .systemLibrary(name: "CCPUID", path: "Sources/CCPUID"),
        .target(name: "HymbaRuntime", dependencies: ["HymbaFormat", "HymbaTokenizer", "CCPUID"] + kernelBackends,
                swiftSettings: cpuSettings),
        .target(name: "HymbaKit", dependencies: ["HymbaRuntime", "HymbaFormat", "HymbaTokenizer"]),
        .systemLibrary(name: "CHymba", path: "include"),
        .target(name: "HymbaC", dependencies: ["CHymba", "HymbaKit"]),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(
            name: "CommandLineSupport",
            dependencies: ["HymbaFormat", "HymbaRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            plugins: ["BuildInfoPlugin"]),
        .systemLibrary(
            name: "CEditLine", pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]),
        .executableTarget(
            name: "hymba-convert",
            dependencies: [
                "HymbaConverter", "HymbaFormat", "HymbaRuntime", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The OpenAI-compatible HTTP server behind `hymba-edge serve`: request/response types,
        // routes, and the slot scheduler that decodes the active requests together.
        .target(
            name: "HymbaServer",
            dependencies: [
                "HymbaRuntime", "HymbaFormat", "HymbaTokenizer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "hymba-edge",
            dependencies: [
                "HymbaRuntime", "HymbaFormat", "HymbaTokenizer", "CommandLineSupport", "CEditLine", "HymbaServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Test-only helpers shared by the test targets (GGML's Q4_0, the q4 yardstick, scratch directories).
        .target(name: "HymbaTestSupport", dependencies: ["HymbaFormat"], path: "Tests/HymbaTestSupport"),
        .testTarget(name: "HymbaFormatTests", dependencies: ["HymbaFormat", "HymbaTestSupport"]),
        // The command-line tests run the built executables, so the tests depend on them.
        .testTarget(
            name: "HymbaConverterTests", dependencies: ["HymbaConverter", "HymbaFormat", "HymbaRuntime", "HymbaTestSupport", "hymba-convert"]),
        .testTarget(
            name: "HymbaTokenizerTests",
            dependencies: ["HymbaTokenizer", "HymbaConverter", "HymbaFormat"]),
        .testTarget(
            name: "HymbaRuntimeTests",
            dependencies: ["HymbaRuntime", "HymbaConverter", "HymbaFormat", "HymbaTestSupport"] + kernelBackends),
        // Generation, sampling, perplexity and the hymba-edge command line (runs the executable).
        .testTarget(
            name: "HymbaEdgeTests",
            dependencies: ["HymbaRuntime", "HymbaConverter", "HymbaFormat", "HymbaTokenizer", "HymbaTestSupport", "hymba-edge"]),
        // The server on an ephemeral loopback port, driven by a real HTTP client.
        .testTarget(
            name: "HymbaServerTests",
            dependencies: [
                "HymbaServer", "HymbaRuntime", "HymbaFormat", "HymbaTokenizer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // libhymba: C programs built with cc against the built libhymba.so, the Python
        // example, the HymbaKit API. Depends on HymbaC so the library is built first.
        .testTarget(
            name: "LibHymbaTests",
            dependencies: ["HymbaKit", "HymbaC", "CHymba", "HymbaRuntime", "HymbaFormat", "HymbaConverter", "HymbaTestSupport"],
            exclude: ["C"]),
    ] + kernelTargets,
    swiftLanguageModes: [.v5]
)
