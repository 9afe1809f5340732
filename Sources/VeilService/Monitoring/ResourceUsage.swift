import Foundation
import VeilWire

#if canImport(Glibc)
    import Glibc
#endif

/// What a participant's device used over one round (`Specs/wire.md` §9.2), as its
/// `ResourceReport` says once the coordinator has checked every value's bounds. A report is
/// the participant's own statement: shown and exported, never trusted for anything else.
public struct ResourceUsage: Codable, Hashable, Sendable {
    public var round: Int
    /// When the coordinator accepted it (Unix seconds).
    public var reported: Double
    public var cpuFraction: Double
    public var memoryBytes: UInt64
    public var networkBitsPerSecond: Double
    /// 0…1, or −1 on mains power or without a battery.
    public var battery: Double
    /// 0…1, or −1 when not measured.
    public var gpuUtilisation: Double

    enum CodingKeys: String, CodingKey {
        case round, reported, cpuFraction = "cpu_fraction", memoryBytes = "memory_bytes"
        case networkBitsPerSecond = "network_bits_per_second", battery, gpuUtilisation = "gpu_utilisation"
    }

    /// The report this was accepted from (a stored one is checked again when read back).
    var report: Veil_V1_ResourceReport {
        .with {
            $0.round = UInt64(clamping: round)
            $0.cpuFraction = cpuFraction
            $0.memoryBytes = memoryBytes
            $0.networkBitsPerSecond = networkBitsPerSecond
            $0.battery = battery
            $0.gpuUtilisation = gpuUtilisation
        }
    }

    /// Why a report was refused.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks a report's bounds: a value out of them refuses the whole report.
    public init(validating report: Veil_V1_ResourceReport, at reported: Double) throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw Invalid(description: what) } }
        try check(report.round >= 1 && report.round <= 1 << 62, "round must be in 1...2^62")
        try check(
            report.cpuFraction.isFinite && (0...4096).contains(report.cpuFraction), "cpu_fraction must be in 0...4096")
        try check(report.memoryBytes <= 1 << 52, "memory_bytes must be at most 2^52")
        try check(
            report.networkBitsPerSecond.isFinite && (0...1e13).contains(report.networkBitsPerSecond),
            "network_bits_per_second must be in 0...1e13")
        try check(report.battery == -1 || (0...1).contains(report.battery), "battery must be -1 or in 0...1")
        try check(
            report.gpuUtilisation == -1 || (0...1).contains(report.gpuUtilisation),
            "gpu_utilisation must be -1 or in 0...1")
        round = Int(report.round)
        self.reported = reported
        cpuFraction = report.cpuFraction
        memoryBytes = report.memoryBytes
        networkBitsPerSecond = report.networkBitsPerSecond
        battery = report.battery == 0 ? 0 : report.battery  // −0 is 0
        gpuUtilisation = report.gpuUtilisation
    }
}

/// Readings of this process and its machine, from the kernel (Linux `/proc` and `/sys`).
public enum ProcessResources {
    /// CPU seconds (user and system) this process has used.
    public static func cpuSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The resident set size, from `/proc/self/statm` (pages) — 0 where there is none.
    public static func residentBytes() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1))
    }

    /// The charge of the first battery the kernel lists that is discharging, 0…1; −1 when on
    /// mains power or without a battery.
    public static func battery(root: String = "/sys/class/power_supply") -> Double {
        let supplies = (try? FileManager.default.contentsOfDirectory(atPath: root))?.sorted() ?? []
        for name in supplies {
            func read(_ file: String) -> String? {
                (try? String(contentsOfFile: "\(root)/\(name)/\(file)", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard read("type") == "Battery", read("status") == "Discharging",
                let capacity = read("capacity").flatMap(Double.init), (0...100).contains(capacity)
            else { continue }
            return capacity / 100
        }
        return -1
    }

    /// The busiest GPU's utilisation, 0…1, from the DRM drivers that publish it
    /// (`gpu_busy_percent`: amdgpu; others have no kernel file) — −1 when there is no reading.
    public static func gpuUtilisation(root: String = "/sys/class/drm") -> Double {
        let cards = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let readings = cards.compactMap { card -> Double? in
            guard
                let text = try? String(contentsOfFile: "\(root)/\(card)/device/gpu_busy_percent", encoding: .utf8),
                let percent = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), (0...100).contains(percent)
            else { return nil }
            return percent / 100
        }
        return readings.max() ?? -1
    }
}

/// Measures one round on a participant: the process's CPU time and the protocol bytes over
/// the round's wall time.
struct ResourceMeter {
    let round: UInt64
    private let began = ContinuousClock.now
    private let cpuBegan = ProcessResources.cpuSeconds()
    private(set) var bytes = 0

    init(round: UInt64) { self.round = round }

    mutating func count(_ byteCount: Int) { bytes += byteCount }

    /// The report for the round, at its end.
    func report() -> Veil_V1_ResourceReport {
        let elapsed = max(seconds(since: began), 1e-3)
        return .with {
            $0.round = round
            $0.cpuFraction = min(max((ProcessResources.cpuSeconds() - cpuBegan) / elapsed, 0), 4096)
            $0.memoryBytes = min(ProcessResources.residentBytes(), 1 << 52)
            $0.networkBitsPerSecond = min(Double(bytes) * 8 / elapsed, 1e13)
            $0.battery = ProcessResources.battery()
            $0.gpuUtilisation = ProcessResources.gpuUtilisation()
        }
    }
}
