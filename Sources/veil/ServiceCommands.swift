import ArgumentParser
import Foundation
import Logging
import VeilPostgres
import VeilService
import VeilTransport
import X509

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The federation's certificate authority: create it, sign holders' requests.",
        discussion: """
            Keys are made where they are used: each holder runs `veil ca request` on its own machine and \
            sends only the request to the CA operator, who runs `veil ca sign`. The CA folder never holds a \
            holder's private key. `veil ca issue` makes keys and certificate together in the CA folder, for local \
            testing only.
            """,
        subcommands: [Init.self, Request.self, Sign.self, Issue.self, Token.self, Enrol.self]
    )

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On the CA: make a one-time enrolment token for a participant (a browser).",
            discussion: """
                Prints a token (64 hex digits) that lets whoever holds it have one certificate request for ID, \
                role participant, signed by `veil ca enrol` within --minutes. The CA keeps only the token's SHA-256 \
                (DIR/enrolment/); hand the token to the participant over a channel you trust. Specs/wire.md §2.3.
                """)

        @Option(help: "The CA's folder.")
        var dir: String

        @Option(help: "The participant's id (1–64 of a–z A–Z 0–9 . - _).")
        var id: String

        @Option(help: "Minutes the token stays valid (at most 43200, 30 days).")
        var minutes = 60

        func run() throws {
            do {
                let ca = try FederationCA(directory: URL(fileURLWithPath: dir))
                let token = try EnrolmentTokens(ca: ca).issue(id: id, validity: Double(minutes) * 60)
                print(token)
            } catch { throw usageError("\(error)") }
        }
    }

    struct Enrol: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On the CA: serve the enrolment endpoint browsers get their certificates from.",
            discussion: """
                Listens with TLS (--certificate and --key: the endpoint's own server certificate, one browsers \
                trust) and answers POST /enrol {"token", "request"} with {"certificate", "ca"}: the request gets the \
                checks of `veil ca sign`, the token (`veil ca token`) decides the id and is used once. Run it where \
                the CA folder is — never on the coordinator's machine. Stops on SIGINT or SIGTERM. \
                Specs/wire.md §2.3.
                """)

        @Option(help: "The CA's folder.")
        var dir: String

        @Option(help: "The endpoint's TLS certificate chain (PEM).")
        var certificate: String

        @Option(help: "The endpoint's TLS private key (PEM).")
        var key: String

        @Option(help: "The address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "The port to listen on (0: any free port).")
        var port = 8443

        @Option(
            help:
                "A browser origin (https://host[:port], as browsers send it) whose pages may enrol here (repeatable; http only on loopback)."
        )
        var allowOrigin: [String] = []

        func run() async throws {
            guard (0...65535).contains(port) else { throw usageError("--port must be 0…65535") }
            for origin in allowOrigin {
                guard let canonical = WebOrigin.canonical(origin), canonical == origin else {
                    throw usageError(
                        "--allow-origin \(origin) is not an origin as browsers send it: https://host[:port], lower case, no default port, no path (http only for 127.0.0.1, localhost or [::1])"
                    )
                }
            }
            var logger = Logger(label: "veil.enrol")
            logger.logLevel = .info
            let server: EnrolmentServer
            do {
                let enrolment = try Enrolment(ca: try FederationCA(directory: URL(fileURLWithPath: dir)))
                server = try await EnrolmentServer.start(
                    host: host, port: port,
                    settings: .init(
                        enrolment: enrolment, certificatePath: certificate, keyPath: key,
                        allowedOrigins: Set(allowOrigin)),
                    logger: logger)
            } catch { throw usageError("\(error)") }
            let shown = host.contains(":") ? "[\(host)]" : host
            print("enrolment endpoint: https://\(shown):\(server.port)/enrol")
            fflush(nil)  // the address at once, even into a pipe
            await EnrolmentServer.waitForStopSignal()
            try? await server.stop()
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a CA (a P-256 key and a self-signed certificate) in DIR.",
            discussion: "Writes DIR/ca.key.pem (mode 0600) and DIR/ca.cert.pem; refuses to overwrite an existing CA.")

        @Option(help: "The CA's folder.")
        var dir: String

        @Option(help: "The CA's common name.")
        var name = "Veil federation CA"

        func run() throws {
            do {
                try FederationCA.create(in: URL(fileURLWithPath: dir), name: name)
            } catch { throw usageError("\(error)") }
            print("created the CA in \(dir): ca.cert.pem, ca.key.pem")
        }
    }

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On a holder's machine: create its keys and a certificate request for the CA.",
            discussion: """
                Writes OUT/ID.key.pem (the P-256 TLS key) and OUT/ID.signing.key (the Ed25519 seed that signs \
                protocol messages), both mode 0600 and never overwritten, and OUT/ID.csr.pem: a PKCS #10 request \
                signed by the TLS key, carrying the role, the Ed25519 public key and that key's signature binding it \
                to the id, the role and the TLS key (Specs/wire.md §2.1). Send only the .csr.pem to the CA. A \
                coordinator's request names DNS names participants may connect by (--host, repeatable; default \
                localhost); never IP addresses — participants verify the coordinator by its id.
                """)

        @OptionGroup var holder: HolderOptions

        @Option(help: "The folder for the keys and the request (created if missing).")
        var out: String

        func run() throws {
            let hosts = try holder.hosts()
            do {
                let files = try CertificateRequest.create(
                    id: holder.id, role: holder.role, hosts: hosts, in: URL(fileURLWithPath: out))
                print(
                    "created \(files.keyPath), \(files.signingKeyPath) (keep them here) and \(files.requestPath) (send it to the CA)"
                )
            } catch { throw usageError("\(error)") }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On the CA: issue the certificate a holder requested.",
            discussion: """
                Checks the request (its signature by the TLS key, the signing key's binding to the id, role and TLS \
                key, that the role is the one given with --role) and writes the certificate to DIR/ID.cert.pem, the \
                CA's record of it, and to --out if given. An id is certified once. Valid for a year unless --days \
                says otherwise. Send the certificate and DIR/ca.cert.pem back to the holder.
                """)

        @Option(help: "The CA's folder.")
        var dir: String

        @Option(help: "The holder's request file (ID.csr.pem).")
        var request: String

        @Option(help: "The role the CA operator means to certify: coordinator, participant or key-holder.")
        var role: FederationRole

        @Option(help: "Also write the certificate here.")
        var out: String?

        @OptionGroup var validity: ValidityOptions

        func run() throws {
            let expiry = try validity.notValidAfter()
            do {
                let ca = try FederationCA(directory: URL(fileURLWithPath: dir))
                let parsed = try CertificateRequest(path: request)
                let (certificate, path) = try ca.sign(request: parsed, role: role, notValidAfter: expiry)
                if let out,
                    URL(fileURLWithPath: out).standardizedFileURL.path
                        != URL(fileURLWithPath: path).standardizedFileURL.path
                {
                    try (try certificate.serializeAsPEM().pemString + "\n").write(
                        toFile: out, atomically: true, encoding: .utf8)
                }
                let hosts = parsed.hosts.isEmpty ? "" : " for hosts \(parsed.hosts.joined(separator: ", "))"
                print("signed \(role.rawValue) \(parsed.id)\(hosts): \(path)\(out.map { ", \($0)" } ?? "")")
            } catch { throw usageError("\(error)") }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Local testing only: make a holder's keys and certificate together in the CA folder.",
            discussion: """
                Writes DIR/ID.cert.pem (P-256, subject CN=ID, Veil's role and signing-key extensions), \
                DIR/ID.key.pem and DIR/ID.signing.key (the Ed25519 seed that signs protocol messages; both \
                mode 0600). Whoever holds the CA folder then holds these private keys and can act as the holder: \
                for a real federation use `veil ca request` on the holder's machine and `veil ca sign` here. A \
                coordinator's certificate names DNS names besides its id (--host, repeatable; default localhost; \
                no IP addresses). Valid for a year unless --days says otherwise.
                """)

        @Option(help: "The CA's folder.")
        var dir: String

        @OptionGroup var holder: HolderOptions

        @OptionGroup var validity: ValidityOptions

        func run() throws {
            let (hosts, expiry) = (try holder.hosts(), try validity.notValidAfter())
            do {
                let ca = try FederationCA(directory: URL(fileURLWithPath: dir))
                let files = try ca.issue(id: holder.id, role: holder.role, hosts: hosts, notValidAfter: expiry)
                print(
                    "issued \(holder.role.rawValue) \(holder.id): \(files.certificatePath), \(files.keyPath), \(files.signingKeyPath)"
                )
            } catch { throw usageError("\(error)") }
        }
    }

    /// Who a certificate is for: `veil ca request` and `veil ca issue`.
    struct HolderOptions: ParsableArguments {
        @Option(help: "The holder's id (1–64 of a–z A–Z 0–9 . - _).")
        var id: String

        @Option(help: "coordinator, participant or key-holder (holds the Paillier secret key).")
        var role: FederationRole

        @Option(
            help: "Coordinator: a DNS name participants may connect by, besides its id (repeatable; no IP addresses).")
        var host: [String] = []

        /// The certificate's DNS names besides the id: a coordinator's only, localhost unless given.
        func hosts() throws -> [String] {
            guard role == .coordinator else {
                guard host.isEmpty else { throw usageError("--host is for a coordinator's certificate") }
                return []
            }
            return host.isEmpty ? ["localhost"] : host
        }
    }

    struct ValidityOptions: ParsableArguments {
        @Option(help: "Days of validity.")
        var days = 365

        func notValidAfter() throws -> Date {
            guard days >= 1 else { throw usageError("--days must be at least 1") }
            return Date().addingTimeInterval(Double(days) * 86400)
        }
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Run the coordinator of a federation: gRPC over mutual TLS, state in SQLite or PostgreSQL, metrics over HTTP.",
        discussion: """
            Reads the configuration file (JSON; every key and its default in Specs/wire.md §7), listens for \
            participants, and runs rounds until the configured number have completed, resuming from the \
            store after a restart. Prints one line per round on stdout; logs go to stderr. SIGTERM or \
            SIGINT stops it cleanly: the round in flight is recorded as interrupted, participants are told the \
            federation is over, the store is closed, and the exit status is 0. With a `postgres` store, \
            several processes form a tier (Specs/wire.md §6.2): one leads, the others wait as standbys \
            (`/readyz` answers 503) until its lease runs out; a leader that loses its lease exits 3, and one \
            stopped by a signal hands over, its participants reconnecting to the next leader. With \
            `hierarchy` (Specs/wire.md §6.3) every process of the tier is an aggregator — participants connect \
            to it and it sums one group of a round at a time — and the one holding the lease also leads: it \
            opens each round and combines the groups' sums. It prints one line per group it deposits, and one \
            per round it commits.
            """)

    @Option(help: "The configuration file.")
    var config: String

    @Option(
        help: """
            With hierarchy: the host:port at which participants reach this process, given to a participant \
            another aggregator refuses for its load.
            """)
    var advertise: String?

    @OptionGroup var output: OutputOptions

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            if ProcessInfo.processInfo.environment["VEIL_DEBUG"] != nil { handler.logLevel = .debug }
            return handler
        }
        let configuration: ServeConfiguration
        var leadership: (election: LeaderElection, lease: CoordinatorStore.Lease)? = nil
        do {
            configuration = try ServeConfiguration.load(path: config)
            if let address = advertise {
                guard configuration.hierarchy != nil else {
                    throw ConfigurationError("--advertise names this aggregator's address: only with hierarchy")
                }
                guard JoinConfiguration.address(address) != nil else {
                    throw ConfigurationError("--advertise \"\(address)\" is not host:port (a port in 1...65535)")
                }
            }
        } catch { throw usageError("\(error)") }
        if configuration.hierarchy != nil { return try await runTier(configuration) }
        let coordinator: Coordinator
        do {
            // On PostgreSQL several processes may share the state: one leads, the others wait.
            if let settings = configuration.postgres {
                // A standby answers health checks (`/readyz`: 503) on the metrics port — from the
                // start, even while the store's writers' lock is held elsewhere — and leaves the
                // port to the coordinator once it leads.
                var standby: MonitoringServer? = nil
                if let port = configuration.metricsPort {
                    standby = try await MonitoringServer.start(host: configuration.host, port: port, content: .standby)
                }
                let election = LeaderElection(
                    store: try CoordinatorStore(electingAt: configuration.store, driver: PostgresStoreDriver()),
                    holder: LeaderElection.defaultHolder, seconds: settings.leaseSeconds)
                // A standby has nothing to record: a signal ends it at once, with status 0 (as
                // process 1 of a container, it would otherwise ignore SIGTERM).
                let signals = [SIGTERM, SIGINT].map { number in
                    signal(number, SIG_IGN)
                    let source = DispatchSource.makeSignalSource(signal: number)
                    source.setEventHandler {
                        FileHandle.standardError.write(Data("standby: stopped by a signal\n".utf8))
                        Foundation.exit(0)
                    }
                    source.resume()
                    return source
                }
                let lease = try await election.lead(
                    waiting: { held, remaining in
                        FileHandle.standardError.write(
                            Data(
                                "standby: \(held.holder) leads under epoch \(held.epoch); waiting (its lease ends in \(String(format: "%.1f", remaining)) s unless renewed)\n"
                                    .utf8))
                    },
                    unreachable: { error in
                        FileHandle.standardError.write(
                            Data("standby: the store cannot be reached (\(error)); asking again\n".utf8))
                    })
                // From here the coordinator's own handlers stop it cleanly.
                for source in signals { source.cancel() }
                try await standby?.stop()
                FileHandle.standardError.write(Data("leading under epoch \(lease.epoch) as \(lease.holder)\n".utf8))
                leadership = (election, lease)
            }
            coordinator = try Coordinator(
                configuration: configuration, stores: PostgresStoreDriver(), fence: leadership?.lease)
        } catch { throw usageError("\(error)") }
        // A leader that cannot renew its lease stops at once: a standby may already lead, and
        // the store refuses this process's writes (Specs/wire.md §6.2).
        let renewal = leadership.map { election, lease in
            Task {
                do { try await election.keepLeading(lease) } catch let lost as LeadershipLost {
                    FileHandle.standardError.write(Data("error: \(lost)\n".utf8))
                    Foundation.exit(3)
                }
            }
        }
        defer { renewal?.cancel() }
        let json = output.json
        let summary: FederationSummary
        do {
            summary = try await CoordinatorServer.run(
                coordinator, stopOnSignals: true,
                ready: { endpoints in
                    FileHandle.standardError.write(
                        Data(
                            "listening on \(configuration.host):\(endpoints.grpcPort)\(endpoints.metricsPort.map { ", metrics on :\($0)" } ?? "")\n"
                                .utf8))
                    if let port = endpoints.metricsPort, let file = configuration.monitoring?.tokenFile {
                        // The token stays in its file: the URL to open is this one plus #token=<the file's line>.
                        FileHandle.standardError.write(
                            Data(
                                "dashboard: http://\(configuration.host):\(port)/#token=… (the token in \(file))\n".utf8
                            ))
                    }
                },
                progress: { round in
                    if !json {
                        print(roundLine(round))
                        fflush(nil)  // one line per round as it happens, even into a pipe
                    }
                })
        } catch let lost as LeadershipLost {
            FileHandle.standardError.write(Data("error: \(lost)\n".utf8))
            throw ExitCode(3)
        }
        // A clean end hands over at once: no standby waits for the lease to run out.
        if let (election, lease) = leadership {
            renewal?.cancel()
            try? election.store.releaseLeadership(lease)
        }
        try finish(summary, json: json, countingAttempts: true)
    }

    /// Prints how the federation ended (one JSON object with --json); exit status 1 when it gave up.
    func finish(_ summary: FederationSummary, json: Bool, countingAttempts: Bool) throws {
        if json {
            print(try jsonString(summaryObject(summary)))
        } else {
            print(
                "federation finished: \(summary.completedRounds) rounds completed"
                    + (countingAttempts ? " in \(summary.attempts) attempts" : "")
                    + (summary.finalAccuracy.map { String(format: ", test accuracy %.4f", $0) } ?? "")
                    + (summary.stopReason.map { "; stopped early: \($0)" } ?? ""))
        }
        if summary.gaveUp { throw ExitCode.failure }
    }
}

struct JoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Take part in a federation as a participant.",
        discussion: """
            Reads the configuration file (JSON; Specs/wire.md §7), connects to the coordinator with the \
            participant's certificate, and takes part in each round it is assigned until the coordinator \
            finishes the federation — checking every assignment against its own policy first (Specs/wire.md \
            §3.1: the threshold its own threat model requires, its smallest cohort and release floor, the key \
            holder's signature on a Paillier key, its privacy budget) and declining, with the reason, what falls \
            short. Reconnects after a lost connection. Prints a summary line, and the rounds it declined.
            """)

    @Option(help: "The configuration file.")
    var config: String

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            if ProcessInfo.processInfo.environment["VEIL_DEBUG"] != nil { handler.logLevel = .debug }
            return handler
        }
        let agent: ParticipantAgent
        do { agent = try ParticipantAgent(configuration: try JoinConfiguration.load(path: config)) } catch {
            throw usageError("\(error)")
        }
        let summary = try await agent.run()
        print(
            "\(summary.id): assigned \(summary.roundsAssigned) rounds, completed \(summary.roundsCompleted); \(summary.finishedReason ?? "")"
        )
        if !summary.declines.isEmpty {
            let counts = summary.declines.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            print("declined: \(counts.joined(separator: ", ")); the last: \(summary.lastDecline ?? "-")")
        }
        if let notice = summary.privacyNotice { print(notice) }
        if let spent = summary.privacySpent {
            print(String(format: "privacy: this participant has spent ε = %.4g", spent))
        }
        if let epsilon = summary.exampleEpsilon, let settings = agent.configuration.dpSgd {
            print(
                String(
                    format: "DP-SGD: example-level ε = %.4g at δ = %.3g over %d local trainings (%d steps)", epsilon,
                    settings.delta, summary.exampleRounds ?? 0, summary.exampleSteps ?? 0))
        }
    }
}

func roundLine(_ r: RoundSummary) -> String {
    var line = String(
        format: "round %4d  %@  survivors %4d/%-4d t %-4@ %7.2f s  in %9d B  out %9d B%@%@", r.number,
        r.completed ? "completed" : r.interrupted ? "interrupted" : "aborted  ", r.survivors, r.cohort,
        r.threshold.map { "\($0)" } ?? "-", r.seconds,
        r.bytesIn, r.bytesOut,
        r.accuracy.map { String(format: "  accuracy %.4f", $0) } ?? (r.abortReason.map { "  (\($0))" } ?? ""),
        r.epsilon.map { String(format: "  ε %.4g", $0) } ?? "")
    if !r.staleness.isEmpty {
        // Asynchronous rounds: how stale each member's update was (its weight is 1/√(1 + τ)).
        line +=
            "\nround \(r.number): staleness "
            + r.staleness.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
    for alert in r.budgetAlerts {
        line += "\nround \(r.number): alert: \(alert) passed the alert fraction of its budget"
    }
    if let first = r.budgetRefusals.first {
        line += "\nround \(r.number): \(r.budgetRefusals.count) not selected for their budget, e.g. \(first)"
    }
    return line
}

func summaryObject(_ s: FederationSummary) -> [String: Any] {
    [
        "completed_rounds": s.completedRounds, "attempts": s.attempts, "final_accuracy": s.finalAccuracy ?? NSNull(),
        "stop_reason": s.stopReason ?? NSNull(),
        "rounds": s.rounds.map { r in
            [
                "round": r.number, "attempt": r.attempt, "completed": r.completed, "interrupted": r.interrupted,
                "cohort": r.cohort,
                "survivors": r.survivors, "threshold": r.threshold ?? NSNull(), "seconds": r.seconds,
                "bytes_in": r.bytesIn, "bytes_out": r.bytesOut,
                "accuracy": r.accuracy ?? NSNull(), "loss": r.loss ?? NSNull(),
                "abort_reason": r.abortReason ?? NSNull(),
                "crypto_seconds": r.cryptoSeconds, "epsilon": r.epsilon ?? NSNull(),
                "budget_refusals": r.budgetRefusals, "budget_alerts": r.budgetAlerts,
                "payload_bits": r.payloadBits ?? NSNull(), "subset": r.subsetFraction ?? NSNull(),
                "staleness": r.staleness, "total_weight": r.totalWeight ?? NSNull(),
            ] as [String: Any]
        },
    ]
}

struct KeyHolderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyholder",
        abstract: "Hold a Paillier federation's secret key and decrypt its aggregates.",
        discussion: """
            Reads the configuration file (JSON; Specs/wire.md §7), connects to the coordinator with a \
            key-holder certificate, announces its public key signed by its certified key (printing the key's \
            fingerprint on stderr), and decrypts each round's rerandomised aggregate only with a signed receipt \
            from every member of a roster of at least minimum_contributors certified participants, at most once \
            per round, recording each decryption in the record file before answering \
            (Specs/paillier.md §6.1). The coordinator never holds the key; this party never sees a single \
            participant's ciphertext, and a partial aggregate would decrypt to masked noise. With threshold_key \
            and share (from veil paillier deal) instead of secret_key, it is one of the holders of a threshold \
            key: it announces which share it holds, makes the same checks, and answers with a proved partial \
            decryption of each ciphertext, which the coordinator combines with those of t − 1 others \
            (Specs/paillier.md §6.3); the fingerprint printed is then the threshold key's.
            """)

    @Option(help: "The configuration file.")
    var config: String

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            if ProcessInfo.processInfo.environment["VEIL_DEBUG"] != nil { handler.logLevel = .debug }
            return handler
        }
        let holder: KeyHolderAgent
        do { holder = try KeyHolderAgent(configuration: try KeyHolderConfiguration.load(path: config)) } catch {
            throw usageError("\(error)")
        }
        FileHandle.standardError.write(
            Data("key holder \(holder.identity.id): key fingerprint \(holder.fingerprint)\n".utf8))
        let answered = try await holder.run()
        print("\(holder.identity.id): decrypted \(answered) aggregates")
    }
}

extension FederationRole: ExpressibleByArgument {}
