// swift-tools-version:5.9
// DoorCore: the Swift package apps depend on. The UniFFI-generated Swift lives in its own
// target (generated code stays in Swift 5 mode); the C header and module map sit in
// DoorCoreFFI. On Apple platforms the Rust library comes as an XCFramework built by
// scripts/build-xcframework (needs Xcode); on Linux (the test suite here) the module map
// links libdoor_core from the library search path.
import PackageDescription

let package = Package(
    name: "DoorCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "DoorCoreBindings", targets: ["DoorCoreBindings"]),
    ],
    targets: [
        .systemLibrary(name: "DoorCoreFFI", path: "Sources/DoorCoreFFI"),
        .target(
            name: "DoorCoreBindings",
            dependencies: ["DoorCoreFFI"],
            path: "Sources/DoorCoreBindings"
        ),
        .testTarget(
            name: "DoorCoreTests",
            dependencies: ["DoorCoreBindings"],
            path: "Tests/DoorCoreTests"
        ),
    ]
)
