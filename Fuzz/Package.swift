// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for every decoder that takes bytes from a peer or a file (Fuzz/README.md).
// Built only with the fuzzing flags (Scripts/fuzz.sh):
//   swift build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -enable-testing
// Each target is one `LLVMFuzzerTestOneInput`; `-enable-testing` lets them reach the decoders
// that the library keeps internal through `@testable import`.
let package = Package(
    name: "VeilFuzz",
    dependencies: [
        .package(name: "Veil", path: ".."),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzWireMessages",
            dependencies: [
                "FuzzSupport",
                .product(name: "VeilCore", package: "Veil"),
                .product(name: "VeilCrypto", package: "Veil"),
                .product(name: "VeilSecAgg", package: "Veil"),
                .product(name: "VeilLearning", package: "Veil"),
                .product(name: "VeilPaillier", package: "Veil"),
                .product(name: "VeilService", package: "Veil"),
                .product(name: "VeilWire", package: "Veil"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "FuzzSecAggBodies",
            dependencies: [
                "FuzzSupport",
                .product(name: "VeilCore", package: "Veil"),
                .product(name: "VeilCrypto", package: "Veil"),
                .product(name: "VeilSecAgg", package: "Veil"),
            ]
        ),
        .executableTarget(
            name: "FuzzPaillierFiles",
            dependencies: ["FuzzSupport", .product(name: "VeilPaillier", package: "Veil")]
        ),
        .executableTarget(
            name: "FuzzConfiguration",
            dependencies: [
                "FuzzSupport", .product(name: "VeilLearning", package: "Veil"),
                .product(name: "VeilService", package: "Veil"),
            ]
        ),
        .executableTarget(
            name: "FuzzAuditFiles",
            dependencies: [
                "FuzzSupport", .product(name: "VeilService", package: "Veil"),
            ]
        ),
        .executableTarget(
            name: "FuzzVectorFiles",
            dependencies: ["FuzzSupport", .product(name: "VeilVectors", package: "Veil")]
        ),
    ]
)
