// swift-tools-version:6.0
// A Swift program using hymba-edge's HymbaKit API, depending on this repository by path.
import Foundation
import PackageDescription

// The repository two levels up. A path dependency's package identity is its directory's name
// (hymba-edge in a plain clone, but any name in another checkout), so it is computed here.
let repository = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "hymba-swift-example",
    dependencies: [
        .package(path: repository.path),
    ],
    targets: [
        .executableTarget(
            name: "generate",
            dependencies: [.product(name: "HymbaKit", package: repository.lastPathComponent.lowercased())]),
    ]
)
