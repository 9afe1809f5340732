import Foundation
import FuzzSupport

@testable import VeilService

// The files `veil audit verify` reads (`Specs/audit.md`): an exported record — masking or
// Paillier — checked against a fixed CA as the command checks it (strict JSON, the record's
// canonical bytes, certificates, the session, the plan, the log's replay or the Paillier
// evidence); a participant's journal entry; the key holder's decryption record. Each must be
// refused with a Swift error, never a trap or a hang, whatever it holds.
//
// Input: one selector byte, then the file.
//   0 an export   1 a journal entry   2 the key holder's record
// Seeds: Paillier exports written by `Specs/reference/make_paillier_audit.py` under the CA in
// `Fuzz/Fixtures/audit-ca.cert.pem`, a journal entry and a record line.

/// The CA the seeds' certificates are issued by (a missing fixture stops the target at once).
let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/audit-ca.cert.pem")
let ca = try! FederationCA.loadCertificate(fixture.path)

/// A scratch folder on tmpfs: the journal and the record are read from files, as the command reads them.
let scratch: URL = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let url = URL(fileURLWithPath: base).appendingPathComponent("veil-fuzz-audit-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let (selector, file) = split(bytes(data, size)) else { return 0 }
    switch selector % 3 {
    case 0:
        let report = RoundAudit.check(Data(file), path: "export.json", ca: ca)
        // Deterministic: the same bytes get the same verdict.
        guard RoundAudit.check(Data(file), path: "export.json", ca: ca).problems == report.problems else {
            violated("two checks of one export disagree")
        }
    case 1:
        let entry = scratch.appendingPathComponent("round-000001-0000000000000000.json")
        guard FileManager.default.createFile(atPath: entry.path, contents: Data(file)) else {
            violated("cannot write \(entry.path)")
        }
        defer { try? FileManager.default.removeItem(at: entry) }
        _ = try? AuditJournal(directory: scratch).entries()
    default:
        let record = scratch.appendingPathComponent("decryptions.jsonl")
        guard FileManager.default.createFile(atPath: record.path, contents: Data(file)) else {
            violated("cannot write \(record.path)")
        }
        defer { try? FileManager.default.removeItem(at: record) }
        _ = try? DecryptionRecord(path: record.path)
    }
    return 0
}
