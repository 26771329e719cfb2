// swift-tools-version:6.0
import Foundation
import PackageDescription

// Module map (one job each):
//   CZstd, CLZ4      system libraries (libzstd-dev, liblz4-dev) used by the chunk codecs
//   HymbaFormat      the .hymba file: layout, storage types (f32/f16/bf16/q8/q4), codecs,
//                    checksums, reader (memory-mapped) and writer; the model config
//   HymbaConverter   Hugging Face checkpoint -> .hymba (safetensors, validation, recipe, synthesize)
//   HymbaTokenizer   SentencePiece-style BPE tokenizer and streaming detokenizer
//   HymbaRuntime     the Hymba forward pass over a mapped model file, caches, sampling
//   HymbaKit         the small public Swift API for embedding (Model, Session, generate)
//   CHymba, HymbaC   include/hymba.h as a Clang module, and its @_cdecl implementation over
//                    HymbaKit: the product `hymba` is libhymba.so, the C ABI
//   hymba-convert, hymba-edge   thin command-line shells over the libraries

// Release builds target the vector units of the machine that builds (AVX2/AVX-512 on x86-64,
// NEON and more on arm64): the kernels are written with SIMD types and gain 2-4x from them.
// HYMBA_TARGET_CPU picks another target (an LLVM CPU name such as haswell, icelake-server,
// neoverse-n1), or "generic" for the toolchain's portable baseline. The manifest is cached:
// after changing the variable, build in a fresh --scratch-path (or `swift package clean`).
let environment = ProcessInfo.processInfo.environment
let targetCPU = environment["HYMBA_TARGET_CPU"] ?? "native"

// The prefill's q4/q8 product has an x86-64 kernel on AVX-512 VNNI instructions
// (Sources/HymbaRuntime/Kernels/IntegerMatMul.swift), compiled in when the target CPU has them:
// "native" on a host whose /proc/cpuinfo lists avx512_vnni and avx512bw, or a named CPU that
// has them. HYMBA_AVX512VNNI=0 or 1 overrides the choice.
let cpusWithVNNI: Set<String> = [
    "cascadelake", "cooperlake", "icelake-client", "icelake-server", "tigerlake", "rocketlake",
    "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d", "znver4", "znver5",
]
/// The instruction-set flags /proc/cpuinfo lists for this host (empty where it has none).
func hostFlags() -> Set<String> {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    return Set(flags.split(separator: " ").map(String.init))
}
func hostHasVNNI() -> Bool { hostFlags().isSuperset(of: ["avx512_vnni", "avx512bw"]) }
let useVNNI: Bool = {
    if let forced = environment["HYMBA_AVX512VNNI"] { return forced == "1" }
    #if arch(x86_64)
    return targetCPU == "native" ? hostHasVNNI() : cpusWithVNNI.contains(targetCPU)
    #else
    return false
    #endif
}()
// With the kernel, LLVM is also told that `vpdpwssd` is fast ("fast-dpwssd"): otherwise its
// tuning for these CPUs rewrites about half of them into `vpmaddwd` + `vpaddd`, twice the
// instructions, although they issue at the rate of FMAs here (measured: 2 per cycle).
let vnniSettings: [SwiftSetting] = [
    .define("HYMBA_AVX512VNNI", .when(configuration: .release)),
    .unsafeFlags(["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "+fast-dpwssd"],
                 .when(configuration: .release)),
]

// Without VNNI, CPUs with AVX2 and FMA (Haswell to Zen 3, and the AVX-512 CPUs without VNNI)
// get the 256-bit integer decoding kernels (Sources/HymbaRuntime/Kernels/AVX2): "native" on a
// host whose /proc/cpuinfo lists avx2 and fma, or a named CPU that has them. HYMBA_AVX2=0 or 1
// overrides the choice.
let cpusWithAVX2: Set<String> = cpusWithVNNI.union([
    "haswell", "broadwell", "skylake", "skylake-avx512", "cannonlake", "alderlake", "raptorlake",
    "meteorlake", "arrowlake", "lunarlake", "gracemont", "znver1", "znver2", "znver3", "x86-64-v3", "x86-64-v4",
])
func hostHasAVX2() -> Bool { hostFlags().isSuperset(of: ["avx2", "fma"]) }
let useAVX2: Bool = {
    if let forced = environment["HYMBA_AVX2"] { return forced == "1" }
    #if arch(x86_64)
    return !useVNNI && (targetCPU == "native" ? hostHasAVX2() : cpusWithAVX2.contains(targetCPU))
    #else
    return false
    #endif
}()
let avx2Settings: [SwiftSetting] = [.define("HYMBA_AVX2", .when(configuration: .release))]

let cpuSettings: [SwiftSetting] = targetCPU == "generic" ? [] :
    [.unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .release))]
        + (useVNNI ? vnniSettings : []) + (useAVX2 ? avx2Settings : [])

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
        // A header-only Clang module: the cache prefetch hint the decoding kernels use.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "HymbaRuntime", dependencies: ["HymbaFormat", "HymbaTokenizer", "CPrefetch"], swiftSettings: cpuSettings),
        .target(name: "HymbaKit", dependencies: ["HymbaRuntime", "HymbaFormat", "HymbaTokenizer"]),
        .systemLibrary(name: "CHymba", path: "include"),
        .target(name: "HymbaC", dependencies: ["CHymba", "HymbaKit"]),
        .executableTarget(
            name: "hymba-convert",
            dependencies: [
                "HymbaConverter", "HymbaFormat", "HymbaRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hymba-edge",
            dependencies: [
                "HymbaRuntime", "HymbaFormat", "HymbaTokenizer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Test-only helpers shared by the test targets (GGML's Q4_0, the q4 yardstick).
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
            dependencies: ["HymbaRuntime", "HymbaConverter", "HymbaFormat"]),
        // Generation, sampling, perplexity and the hymba-edge command line (runs the executable).
        .testTarget(
            name: "HymbaEdgeTests",
            dependencies: ["HymbaRuntime", "HymbaConverter", "HymbaFormat", "HymbaTokenizer", "hymba-edge"]),
        // libhymba: C programs built with cc against the built libhymba.so, the Python
        // example, the HymbaKit API. Depends on HymbaC so the library is built first.
        .testTarget(
            name: "LibHymbaTests",
            dependencies: ["HymbaKit", "HymbaC", "CHymba", "HymbaRuntime", "HymbaFormat", "HymbaConverter"],
            exclude: ["C"]),
    ],
    swiftLanguageModes: [.v5]
)
