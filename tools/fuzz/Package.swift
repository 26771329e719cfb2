// swift-tools-version:6.0
import PackageDescription

// The libFuzzer harnesses for the model-file reader and the saved-state reader, kept out of the main package: every target it
// builds takes `-sanitize=fuzzer,address` (coverage for the fuzzer, AddressSanitizer for reads
// out of bounds), which the main package's builds must not. Build and run with tools/fuzz/run.sh.
let package = Package(
    name: "hymba-fuzz",
    dependencies: [
        .package(name: "hymba-edge", path: "../.."),
    ],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "hymba-fuzz-reader",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "HymbaFormat", package: "hymba-edge"),
                .product(name: "HymbaRuntime", package: "hymba-edge"),
            ]),
        .executableTarget(
            name: "hymba-fuzz-state",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "HymbaFormat", package: "hymba-edge"),
                .product(name: "HymbaRuntime", package: "hymba-edge"),
            ]),
    ],
    swiftLanguageModes: [.v5]
)
