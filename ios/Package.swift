// swift-tools-version:6.0
// DoorCore: the Swift package apps depend on. `DoorCore` is the thin Swift 6 facade apps
// import (it re-exports the bindings); the UniFFI-generated Swift lives in its own target
// (generated code stays in Swift 5 mode); the C header and module map sit in DoorCoreFFI.
// On Apple platforms the Rust library comes as an XCFramework built by
// scripts/build-xcframework (needs Xcode); on Linux (the test suite here) the module map
// links libdoor_core from the library search path.
import PackageDescription

#if os(Linux)
// Linux: the module map links libdoor_core from the library search path.
let ffi: Target = .systemLibrary(name: "DoorCoreFFI", path: "Sources/DoorCoreFFI")
#else
// Apple platforms: the XCFramework (static library, header and module map for devices and
// simulators) that scripts/build-xcframework makes.
let ffi: Target = .binaryTarget(name: "DoorCoreFFI", path: "DoorCoreFFI.xcframework")
#endif

let package = Package(
    name: "DoorCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "DoorCore", targets: ["DoorCore"]),
        .library(name: "DoorCoreBindings", targets: ["DoorCoreBindings"]),
    ],
    targets: [
        ffi,
        .target(
            name: "DoorCoreBindings",
            dependencies: ["DoorCoreFFI"],
            path: "Sources/DoorCoreBindings",
            swiftSettings: [.swiftLanguageMode(.v5)],
            // The Rust staticlib's radio (btleplug over CoreBluetooth) refers to the
            // framework's symbols; a binary target cannot say so itself.
            linkerSettings: [.linkedFramework("CoreBluetooth", .when(platforms: [.iOS, .macOS]))]
        ),
        .target(
            name: "DoorCore",
            dependencies: ["DoorCoreBindings"],
            path: "Sources/DoorCore",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "DoorCoreTests",
            dependencies: ["DoorCore", "DoorCoreBindings"],
            path: "Tests/DoorCoreTests",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
