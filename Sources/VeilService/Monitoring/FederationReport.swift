import Foundation

/// `veil report`'s files (`Specs/wire.md` §9.5): the dashboard with the snapshot inside (one
/// self-contained HTML file), the snapshot as JSON, and its rounds, participants and alerts
/// as CSV (RFC 4180).
public enum FederationReport {
    /// The files' names and contents, in the order they are written.
    public static func files(_ snapshot: MonitoringSnapshot) throws -> [(name: String, bytes: [UInt8])] {
        let json = try snapshot.json()
        return [
            ("report.html", try DashboardPage.report(embedding: json)),
            ("federation.json", Array(json)),
            ("rounds.csv", Array(rounds(snapshot).utf8)),
            ("participants.csv", Array(participants(snapshot).utf8)),
            ("alerts.csv", Array(alerts(snapshot).utf8)),
        ]
    }

    static func rounds(_ s: MonitoringSnapshot) -> String {
        let stages = Array(Set(s.rounds.flatMap(\.stageSeconds.keys))).sorted()
        var rows = [
            [
                "round", "attempt", "outcome", "started", "finished", "cohort", "survivors", "dropped", "seconds",
                "bytes_in", "bytes_out", "accuracy", "loss", "update_norm", "epsilon_max", "epsilon_mean",
                "abort_kind", "abort_reason", "declines",
            ] + stages.map { "seconds_" + $0 }
        ]
        for r in s.rounds {
            rows.append(
                [
                    "\(r.number)", "\(r.attempt)", text(r.outcome), number(r.started), number(r.finished),
                    "\(r.cohort)", "\(r.survivors)", "\(r.droppedCount)", number(r.seconds), "\(r.bytesIn)",
                    "\(r.bytesOut)", number(r.accuracy), number(r.loss), number(r.updateNorm), number(r.epsilonMax),
                    number(r.epsilonMean), text(r.abortKind ?? ""), text(r.abortReason ?? ""),
                    text(r.declines.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ";")),
                ] + stages.map { number(r.stageSeconds[$0]) })
        }
        return csv(rows)
    }

    static func participants(_ s: MonitoringSnapshot) -> String {
        var rows = [
            [
                "id", "connected", "first_seen", "last_seen", "selected", "completed", "dropped", "faults", "excluded",
                "epsilon", "reputation", "credits", "cpu_fraction", "memory_bytes", "network_bits_per_second",
                "battery", "gpu_utilisation", "resources_round",
            ]
        ]
        for p in s.participants {
            let r = p.resources
            rows.append([
                text(p.id), "\(p.connected)", number(p.firstSeen), number(p.lastSeen), "\(p.selected)",
                "\(p.completed)", "\(p.dropped)", "\(p.faults)", "\(p.excluded)", number(p.epsilon),
                number(p.reputation), number(p.credits), number(r?.cpuFraction), r.map { "\($0.memoryBytes)" } ?? "",
                number(r?.networkBitsPerSecond), number(r?.battery), number(r?.gpuUtilisation),
                r.map { "\($0.round)" } ?? "",
            ])
        }
        return csv(rows)
    }

    static func alerts(_ s: MonitoringSnapshot) -> String {
        var rows = [
            [
                "id", "rule", "detector", "severity", "subject", "state", "since", "since_round", "resolved",
                "resolved_round", "value", "summary",
            ]
        ]
        for a in s.alerts {
            rows.append([
                text(a.id), text(a.rule), text(a.detector), text(a.severity), text(a.subject), a.state.rawValue,
                number(a.since), "\(a.sinceRound)", number(a.resolved), a.resolvedRound.map(String.init) ?? "",
                number(a.value), text(a.summary),
            ])
        }
        return csv(rows)
    }

    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        return "\(value)"
    }

    /// A text cell that a spreadsheet would read as a formula (=, +, -, @, tab, CR first) is
    /// prefixed with an apostrophe: a participant id or a reason is data, never a formula.
    static func text(_ value: String) -> String {
        guard let first = value.first, "=+-@\t\r".contains(first) else { return value }
        return "'" + value
    }

    static func csv(_ rows: [[String]]) -> String {
        rows.map { row in
            row.map { cell in
                cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                    ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
            }.joined(separator: ",")
        }.joined(separator: "\r\n") + "\r\n"
    }
}
