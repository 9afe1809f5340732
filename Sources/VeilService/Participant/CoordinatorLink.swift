import VeilWire

/// How a participant or key holder reaches its coordinator: one `Participate` stream that sends
/// `hello` first, then hands the coordinator's messages to `body` with a way to send more.
///
/// The agents' protocol logic is written against this, not against a transport, so that it
/// builds (and is fuzzed) without gRPC; the service's link, gRPC over mutual TLS that accepts
/// only the federation's coordinator, is VeilTransport's `GRPCCoordinatorLink`. The agents
/// trust the coordinator the link authenticated, so the protocol is `package`: code outside
/// Veil runs an agent with `run()`, over that link, and cannot hand it one that checks nothing.
package protocol CoordinatorLink: Sendable {
    /// One stream's work: the coordinator's messages in, and a way to send.
    typealias Session<Result> =
        @Sendable (
            any AsyncSequence<Veil_V1_CoordinatorMessage, any Error>, @escaping (Veil_V1_ParticipantMessage) -> Void
        ) async throws -> Result

    func open<Result: Sendable>(
        tls: TLSFiles, host: String, port: Int, coordinator: String, hello: Veil_V1_Hello,
        body: @escaping Session<Result>
    ) async throws -> Result
}
