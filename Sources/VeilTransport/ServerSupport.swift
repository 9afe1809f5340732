import NIOSSL

/// What Veil's HTTPS servers (the enrolment endpoint, the browser gateway) share.
enum ServerSupport {
    /// A TLS server context of a PEM certificate chain and key, at TLS 1.2 or later.
    static func tlsContext(certificate: String, key: String) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }

    /// A request target's path: what comes before its query.
    static func path(of uri: String) -> String {
        uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
    }
}
