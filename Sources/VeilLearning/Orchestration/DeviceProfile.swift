import Foundation
import VeilCore

/// What a simulated participant's device can do (`Specs/orchestration.md` §1): how fast it
/// trains, how fast its link is, how long one protocol exchange takes, and how often it is
/// online. The simulation turns these into simulated seconds; nothing here is a measurement.
public struct DeviceProfile: Hashable, Sendable {
    /// Training throughput: examples processed per second (one epoch over n examples takes
    /// n / examplesPerSecond seconds).
    public var examplesPerSecond: Double
    /// Link bandwidth towards the device (the broadcast), in bits per second.
    public var downlinkBitsPerSecond: Double
    /// Link bandwidth from the device (the payload and the protocol's messages), in bits per second.
    public var uplinkBitsPerSecond: Double
    /// The round-trip time of one protocol exchange, in seconds.
    public var roundTripSeconds: Double
    /// The probability that the device is online in a given round.
    public var availability: Double

    public init(
        examplesPerSecond: Double, downlinkBitsPerSecond: Double, uplinkBitsPerSecond: Double,
        roundTripSeconds: Double, availability: Double
    ) {
        self.examplesPerSecond = examplesPerSecond
        self.downlinkBitsPerSecond = downlinkBitsPerSecond
        self.uplinkBitsPerSecond = uplinkBitsPerSecond
        self.roundTripSeconds = roundTripSeconds
        self.availability = availability
    }
}

/// The devices of a simulated federation: participant k (from 1) has `devices[(k − 1) mod count]`.
public struct DevicePopulation: Hashable, Sendable {
    public let devices: [DeviceProfile]
    /// What the population was made from, for reports: `heterogeneous` or the file's path.
    public let source: String

    public init(devices: [DeviceProfile], source: String) throws(DeviceProfileError) {
        guard !devices.isEmpty else { throw .invalid("a device file lists at least one device") }
        for (index, device) in devices.enumerated() { try Self.check(device, at: index) }
        self.devices = devices
        self.source = source
    }

    /// The device of the participant at `index` (from 0).
    public func device(ofParticipantAt index: Int) -> DeviceProfile { devices[index % devices.count] }

    /// Parses `heterogeneous` or a path to a device file (`Specs/orchestration.md` §1).
    public static func load(_ specification: String, participants: Int, seed: UInt64) throws(DeviceProfileError)
        -> DevicePopulation
    {
        if specification == "heterogeneous" { return heterogeneous(participants: participants, seed: seed) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: specification)) } catch {
            throw .unreadable(path: specification, reason: error.localizedDescription)
        }
        return try parse(data, source: specification)
    }

    // MARK: The built-in profile

    /// The built-in profile: each participant's device drawn from log-normal spreads of the
    /// width FedScale and Oort report for phones (compute and throughput each spread over
    /// more than an order of magnitude), from the run's seed (`Specs/orchestration.md` §1.2).
    public static func heterogeneous(participants: Int, seed: UInt64) -> DevicePopulation {
        let devices = (1...max(participants, 1)).map { k -> DeviceProfile in
            var g = Xoshiro256(seed: seed, purpose: .devices, participant: k)
            let compute = Self.logNormal(median: 200, sigma: 0.8, &g)
            let downlink = Self.logNormal(median: 20e6, sigma: 1.0, &g)
            let uplink = Self.logNormal(median: 5e6, sigma: 1.0, &g)
            let roundTrip = Self.logNormal(median: 0.08, sigma: 0.5, &g)
            let availability = 0.5 + 0.5 * g.unit()
            return DeviceProfile(
                examplesPerSecond: min(max(compute, 1e-3), 1e9), downlinkBitsPerSecond: min(max(downlink, 1e3), 1e11),
                uplinkBitsPerSecond: min(max(uplink, 1e3), 1e11), roundTripSeconds: min(roundTrip, 60),
                availability: availability)
        }
        // Each value is clamped into the ranges a device file must meet, so this cannot throw.
        return DevicePopulation(unchecked: devices, source: "heterogeneous")
    }

    private init(unchecked devices: [DeviceProfile], source: String) {
        self.devices = devices
        self.source = source
    }

    static func logNormal(median: Double, sigma: Double, _ g: inout Xoshiro256) -> Double {
        median * exp(sigma * g.standardNormal())
    }

    // MARK: The device file

    /// A device file: `{"version": 1, "devices": [{…}, …]}`, every key known and every value in range.
    static func parse(_ data: Data, source: String) throws(DeviceProfileError) -> DevicePopulation {
        let file: DeviceFile
        do { file = try JSONDecoder().decode(DeviceFile.self, from: data) } catch let error as DeviceProfileError {
            throw .invalid("\(source): \(error.description)")
        } catch let error as DecodingError {
            throw .invalid("\(source): \(Self.describe(error))")
        } catch {
            throw .invalid("\(source): \(error)")
        }
        guard file.version == 1 else { throw .invalid("\(source): version must be 1, not \(file.version)") }
        let devices = file.devices.map {
            DeviceProfile(
                examplesPerSecond: $0.examplesPerSecond, downlinkBitsPerSecond: $0.downlinkMbps * 1e6,
                uplinkBitsPerSecond: $0.uplinkMbps * 1e6, roundTripSeconds: $0.roundTripMs / 1000,
                availability: $0.availability)
        }
        do { return try DevicePopulation(devices: devices, source: source) } catch {
            throw .invalid("\(source): \(error.description)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key \(path(context).isEmpty ? "" : path(context) + ".")\(key.stringValue)"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            if context.codingPath.isEmpty { return "the top level must be a JSON object" }
            return
                "\(path(context)) must be \(type == Double.self ? "a number" : type == Int.self ? "an integer" : "a list")"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "invalid \(path(context))"
        @unknown default: return "\(error)"
        }
    }

    /// The ranges a device must meet, named by the file's keys.
    static func check(_ d: DeviceProfile, at index: Int) throws(DeviceProfileError) {
        func require(_ ok: Bool, _ key: String, _ range: String) throws(DeviceProfileError) {
            if !ok { throw .invalid("devices[\(index)].\(key) must be \(range)") }
        }
        try require(d.examplesPerSecond >= 1e-3 && d.examplesPerSecond <= 1e9, "examples_per_second", "in [0.001, 10⁹]")
        try require(
            d.downlinkBitsPerSecond >= 1e3 && d.downlinkBitsPerSecond <= 1e11, "downlink_mbps", "in [0.001, 100000]")
        try require(d.uplinkBitsPerSecond >= 1e3 && d.uplinkBitsPerSecond <= 1e11, "uplink_mbps", "in [0.001, 100000]")
        try require(d.roundTripSeconds >= 0 && d.roundTripSeconds <= 60, "round_trip_ms", "in [0, 60000]")
        try require(d.availability > 0 && d.availability <= 1, "availability", "in (0, 1]")
    }
}

/// A device file or specification that cannot be used.
public enum DeviceProfileError: Error, Hashable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read the device file \(path): \(reason)"
        case .invalid(let why): why
        }
    }
}

/// The device file as written (`Specs/orchestration.md` §1.1); a key it does not know is refused by name.
struct DeviceFile: Decodable {
    let version: Int
    let devices: [Entry]

    struct Entry: Decodable {
        let examplesPerSecond: Double
        let downlinkMbps: Double
        let uplinkMbps: Double
        let roundTripMs: Double
        let availability: Double

        enum CodingKeys: String, CodingKey, CaseIterable {
            case examplesPerSecond = "examples_per_second"
            case downlinkMbps = "downlink_mbps"
            case uplinkMbps = "uplink_mbps"
            case roundTripMs = "round_trip_ms"
            case availability
        }

        init(from decoder: any Decoder) throws {
            try refuseUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            examplesPerSecond = try c.decode(Double.self, forKey: .examplesPerSecond)
            downlinkMbps = try c.decode(Double.self, forKey: .downlinkMbps)
            uplinkMbps = try c.decode(Double.self, forKey: .uplinkMbps)
            roundTripMs = try c.decode(Double.self, forKey: .roundTripMs)
            availability = try c.decode(Double.self, forKey: .availability)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, devices
    }

    init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        devices = try c.decode([Entry].self, forKey: .devices)
    }
}

/// Throws for a key of the object being decoded that `Keys` does not name.
private func refuseUnknownKeys<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _: Keys.Type) throws {
    let known = Keys.allCases.map(\.stringValue)
    let keys = try decoder.container(keyedBy: DeviceFileKey.self).allKeys.map(\.stringValue)
    if let unknown = keys.sorted().first(where: { !known.contains($0) }) {
        let at = decoder.codingPath.map { $0.intValue.map { "devices[\($0)]" } ?? "" }.filter { !$0.isEmpty }
        throw DeviceProfileError.invalid(
            "\(at.last.map { $0 + ": " } ?? "")unknown key \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))"
        )
    }
}

/// Any key of a device file's objects.
private struct DeviceFileKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
