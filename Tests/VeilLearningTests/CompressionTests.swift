import Foundation
import Testing
import VeilCore
import VeilSecAgg

@testable import VeilLearning

/// Compressed updates inside the secure sum (Specs/export.md §5): fewer bits per value, a
/// public random subset of coordinates, and adaptive choice of both.
@Suite struct CompressionTests {
    @Test func aSubsetIsPublicTheSameForEveryoneAndKeepsTheWeight() throws {
        let seed = CoordinateSubset.seed(runSeed: 3, round: 7)
        let subset = try CoordinateSubset(length: 101, size: 25, seed: seed)
        #expect(subset == (try CoordinateSubset(length: 101, size: 25, seed: seed)))
        let other = try CoordinateSubset(length: 101, size: 25, seed: CoordinateSubset.seed(runSeed: 3, round: 8))
        #expect(subset.indices != other.indices)
        #expect(subset.indices.count == 25 + 1 && subset.indices.last == 100 && subset.fraction == 0.25)
        #expect(subset.indices == subset.indices.sorted() && Set(subset.indices).count == subset.indices.count)
        let payload = (0..<101).map { Double($0) }
        let sent = subset.compress(payload)
        #expect(sent.last == 100)  // the weight, unscaled
        let back = subset.expand(sent)
        for i in 0..<100 { #expect(back[i] == (subset.indices.contains(i) ? Double(i) * 4 : 0)) }
        #expect(back[100] == 100)
    }

    /// k = ⌈F·(d − 1)⌉, at least one, and never more than there are.
    @Test func theSizeOfAFraction() {
        #expect(CoordinateSubset.size(length: 11, fraction: 0.3) == 3)
        #expect(CoordinateSubset.size(length: 11, fraction: 0.31) == 4)
        #expect(CoordinateSubset.size(length: 11, fraction: 0.01) == 1)
        #expect(CoordinateSubset.size(length: 11, fraction: 1) == 10)
    }

    @Test func malformedSubsetsAreRefused() {
        let seed = CoordinateSubset.seed(runSeed: 1, round: 1)
        #expect(throws: DataError.self) { try CoordinateSubset(length: 1, size: 1, seed: seed) }
        #expect(throws: DataError.self) { try CoordinateSubset(length: 10, size: 0, seed: seed) }
        #expect(throws: DataError.self) { try CoordinateSubset(length: 10, size: 10, seed: seed) }
        #expect(throws: DataError.self) { try CoordinateSubset(length: 10, size: 3, seed: Array(seed.prefix(31))) }
    }

    /// Unbiased even when k/(d − 1) is not a round fraction: over many rounds' subsets each
    /// coordinate's mean is the payload's.
    @Test func theExpandedSubsetIsUnbiased() throws {
        let payload = (0..<21).map { Double($0 % 7) - 3 }
        var mean = [Double](repeating: 0, count: 21)
        let rounds = 4000
        for round in 1...rounds {
            let subset = try CoordinateSubset(
                length: 21, size: 7, seed: CoordinateSubset.seed(runSeed: 1, round: round))
            for (i, v) in subset.expand(subset.compress(payload)).enumerated() { mean[i] += v / Double(rounds) }
        }
        // Each mean has standard deviation |x|·√((1 − p)/p)/√rounds ≤ 3·1.42/63: 4 of them is 0.27.
        for i in 0..<21 { #expect(abs(mean[i] - payload[i]) < 0.27, "coordinate \(i): \(mean[i])") }
    }

    func run(_ change: (inout FederatedConfiguration) -> Void) throws -> (accuracy: Double, bytes: Int, bits: Set<Int>)
    {
        var c = FederatedConfiguration()
        c.rounds = 30
        change(&c)
        let simulation = try FederatedSimulation(configuration: c)
        var sum = SecAggSecureSum()
        let reports = try simulation.run(secureSum: &sum)
        return (
            try #require(reports.last?.accuracy), reports.reduce(0) { $0 + $1.uploadBytes } / reports.count,
            Set(reports.map(\.payloadBits))
        )
    }

    /// 8 bits per value in Z_2^12 (10 participants: 4 bits of headroom), clip 1: at most a
    /// point of accuracy for less than half the bytes of the 64-bit ring.
    @Test func fewerBitsHalveTheBytesForAtMostAPoint() throws {
        let full = try run { _ in }
        let eight = try run {
            $0.payloadBits = 12
            $0.payloadClip = 1
        }
        #expect(full.bits == [64] && eight.bits == [12])
        #expect(Double(eight.bytes) <= 0.5 * Double(full.bytes), "\(eight.bytes) against \(full.bytes)")
        #expect(eight.accuracy >= full.accuracy - 0.01, "\(eight.accuracy) against \(full.accuracy)")
        let halved = try run { $0.subset = 0.5 }
        #expect(Double(halved.bytes) < 0.7 * Double(full.bytes))
        #expect(halved.accuracy >= full.accuracy - 0.02, "\(halved.accuracy) against \(full.accuracy)")
    }

    /// With slow uplinks and a deadline, the adaptive choice compresses as far as it takes for
    /// the cohort to arrive in time, and no further than its floor.
    @Test func adaptiveCompressionFitsTheDeadlineWithinItsFloor() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("devices-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: path) }
        try Data(
            #"{"version": 1, "devices": [{"examples_per_second": 2000, "downlink_mbps": 20, "uplink_mbps": 0.03, "round_trip_ms": 80, "availability": 1}]}"#
                .utf8
        ).write(to: path)
        func configure(_ c: inout FederatedConfiguration, floor: Int) {
            c.devices = try? DevicePopulation.load(path.path, participants: c.clients, seed: 0)
            c.deadline = 2.5
            c.adaptiveCompression = try? AdaptiveCompression(minBits: floor, minSubset: 1)
        }
        let adaptive = try run { configure(&$0, floor: 4) }
        // 650 values at 64 bits take 1.4 s on a 0.03 Mbit/s uplink on their own: 64 bits do not fit.
        #expect(adaptive.bits.allSatisfy { $0 < 64 && $0 >= 8 }, "\(adaptive.bits)")
        let floored = try run { configure(&$0, floor: 32) }
        #expect(floored.bits == [36])
        var c = FederatedConfiguration()
        c.adaptiveCompression = try AdaptiveCompression(minBits: 8, minSubset: 0.5)
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
        #expect(throws: DataError.self) { try AdaptiveCompression(minBits: 1, minSubset: 1) }
        #expect(
            try AdaptiveCompression(minBits: 8, minSubset: 0.25).candidates.map(\.bits) == [32, 24, 16, 12, 8, 8, 8])
    }
}
