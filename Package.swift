// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Training is arithmetic in tight loops, about eight times slower unoptimised, and the tests
// that reproduce the papers' results (hundreds of rounds) would dominate every debug test run.
// With VEIL_OPTIMIZED_TESTS=1 (which .ci/run sets) VeilLearning is compiled with -O even in
// debug builds; the results are bit-identical. Unset — as for any package that depends on
// Veil — the manifest has no unsafe flags, which SwiftPM refuses in versioned dependencies.
let optimizedTraining: [SwiftSetting] =
    ProcessInfo.processInfo.environment["VEIL_OPTIMIZED_TESTS"] == "1"
    ? [.unsafeFlags(["-O"], .when(configuration: .debug))] : []

// Layers (bottom up): the C libraries, VeilCore (shared vocabulary), VeilCrypto (libsodium
// primitives), VeilSecAgg and VeilPaillier (the secure sums), VeilPrivacy (clipping, noise,
// accounting), VeilLearning (federated algorithms on the sum), VeilVectors (known-answer files
// and their runners), the `veil` tool.
// The crypto modules stay free of server dependencies so their tests build in seconds.
let package = Package(
    name: "Veil",
    products: [
        .executable(name: "veil", targets: ["veil"]),
        .library(name: "VeilCore", targets: ["VeilCore"]),
        .library(name: "VeilCrypto", targets: ["VeilCrypto"]),
        .library(name: "VeilSecAgg", targets: ["VeilSecAgg"]),
        .library(name: "VeilPaillier", targets: ["VeilPaillier"]),
        .library(name: "VeilPrivacy", targets: ["VeilPrivacy"]),
        .library(name: "VeilLearning", targets: ["VeilLearning"]),
        .library(name: "VeilVectors", targets: ["VeilVectors"]),
        // For Fuzz/ (a package of its own): the wire messages and the service's decoders, which
        // build without gRPC.
        .library(name: "VeilWire", targets: ["VeilWire"]),
        .library(name: "VeilExport", targets: ["VeilExport"]),
        .library(name: "VeilService", targets: ["VeilService"]),
        .library(name: "VeilTransport", targets: ["VeilTransport"]),
        .library(name: "VeilPostgres", targets: ["VeilPostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The service only: the crypto modules build without them, and gRPC, HTTP/2, NIOSSL and
        // the service lifecycle are VeilTransport's alone.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The PostgreSQL store (VeilPostgres), for several coordinators sharing one state.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The tests only: runs the `veil` binary without blocking a thread of the cooperative pool.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CGMP",
            pkgConfig: "gmp",
            providers: [.apt(["libgmp-dev"])]
        ),
        .target(name: "VeilCore"),
        .target(name: "VeilCrypto", dependencies: ["CSodium", "VeilCore"]),
        .target(name: "VeilSecAgg", dependencies: ["VeilCore", "VeilCrypto"]),
        .target(name: "VeilPaillier", dependencies: ["CGMP", "VeilCore", "VeilCrypto"]),
        // Privacy noise is drawn from VeilCrypto's ChaCha20 generator, hence that dependency.
        .target(name: "VeilPrivacy", dependencies: ["VeilCore", "VeilCrypto"]),
        .target(
            name: "VeilLearning",
            dependencies: ["CZlib", "VeilCore", "VeilCrypto", "VeilPrivacy"],
            resources: [.copy("Resources/digits.csv.gz")],
            swiftSettings: optimizedTraining
        ),
        .target(
            name: "VeilWire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // Trained models out to the formats devices run (ONNX), and back in.
        .target(
            name: "VeilExport",
            dependencies: ["CZlib", "VeilLearning", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(
            name: "VeilService",
            dependencies: [
                "VeilCore", "VeilCrypto", "VeilSecAgg", "VeilPaillier", "VeilLearning", "VeilPrivacy", "VeilWire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The dashboard (`Specs/wire.md` §9.2) is compiled into the binary: `veil serve` and
            // `veil report` need no files beside it.
            resources: [.embedInCode("Monitoring/Resources/dashboard.html")]
        ),
        .target(
            name: "VeilTransport",
            dependencies: [
                "VeilService", "VeilWire", "VeilPostgres",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The coordinator's store in PostgreSQL: a target of its own, so that the fuzz package,
        // which links VeilService, does not build NIOSSL and the PostgreSQL client with the
        // sanitizers.
        .target(
            name: "VeilPostgres",
            dependencies: [
                "VeilService",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VeilVectors",
            dependencies: [
                "VeilCore", "VeilCrypto", "VeilExport", "VeilLearning", "VeilPaillier", "VeilPrivacy", "VeilSecAgg",
            ]
        ),
        .executableTarget(
            name: "veil",
            dependencies: [
                "CGMP", "CSodium", "VeilCore", "VeilCrypto", "VeilLearning", "VeilPaillier", "VeilPrivacy",
                "VeilSecAgg", "VeilVectors", "VeilService", "VeilTransport", "VeilWire", "VeilExport", "VeilPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Each test target lists every module it imports (none relies on one coming through another).
        .target(
            name: "VeilTestSupport",
            dependencies: ["VeilCrypto", .product(name: "Subprocess", package: "swift-subprocess")],
            path: "Tests/VeilTestSupport"
        ),
        .testTarget(name: "VeilCoreTests", dependencies: ["VeilCore", "VeilTestSupport"]),
        .testTarget(name: "VeilCryptoTests", dependencies: ["CSodium", "VeilCore", "VeilCrypto", "VeilTestSupport"]),
        .testTarget(
            name: "VeilSecAggTests", dependencies: ["VeilCore", "VeilCrypto", "VeilSecAgg", "VeilTestSupport"]),
        .testTarget(
            name: "VeilPaillierTests",
            dependencies: ["VeilCore", "VeilCrypto", "VeilPaillier", "VeilSecAgg", "VeilTestSupport"]),
        .testTarget(
            name: "VeilPrivacyTests", dependencies: ["VeilCore", "VeilCrypto", "VeilPrivacy", "VeilTestSupport"]),
        .testTarget(
            name: "VeilLearningTests",
            dependencies: ["VeilCore", "VeilLearning", "VeilPaillier", "VeilPrivacy", "VeilSecAgg", "VeilTestSupport"]),
        .testTarget(name: "VeilVectorsTests", dependencies: ["VeilPrivacy", "VeilVectors", "VeilTestSupport"]),
        .testTarget(
            name: "VeilServiceTests",
            dependencies: [
                "VeilCore", "VeilCrypto", "VeilLearning", "VeilPaillier", "VeilPrivacy", "VeilSecAgg", "VeilService",
                "VeilTestSupport", "VeilTransport", "VeilWire", "VeilPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
            ]),
        .testTarget(
            name: "VeilExportTests",
            dependencies: ["VeilCore", "VeilExport", "VeilLearning", "VeilTestSupport"]),
        .testTarget(name: "VeilCLITests", dependencies: ["veil", "VeilTestSupport", "VeilVectors"]),
    ]
)
