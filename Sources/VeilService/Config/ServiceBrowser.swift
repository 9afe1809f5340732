import Foundation

/// serve.json's `browser` (`Specs/wire.md` §1.1): the WebSocket binding for participants that
/// cannot present a TLS client certificate (a browser tab), and the participant page.
public struct ServiceBrowser: Codable, Hashable, Sendable {
    /// The HTTPS port of the page and the WebSocket endpoint (0: any free port).
    public var port = 8444
    /// The server certificate and key browsers see (PEM; relative to the configuration file);
    /// nil: the coordinator's own (`tls.certificate`, `tls.key`), which browsers trust only
    /// when told to.
    public var certificate: String?
    public var key: String?
    /// The folder served at `/participate` (the page and its modules); nil: no page, the
    /// WebSocket endpoint only (the page hosted elsewhere).
    public var page: String?
    /// Origins, besides the endpoint's own, whose pages may connect (a page hosted by another
    /// party than the coordinator, §10), in the form browsers send them.
    public var origins: [String] = []
    /// Open connections at most; at most a quarter of them from one address.
    public var maxConnections = 1024

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case port, certificate, key, page, origins, maxConnections
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "browser")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.port, &port)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        page = try c.decodeIfPresent(String.self, forKey: .page)
        try c.take(.origins, &origins)
        try c.take(.maxConnections, &maxConnections)
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ConfigurationError("browser.port must be in 0...65535") }
        guard (certificate == nil) == (key == nil) else {
            throw ConfigurationError("browser.certificate and browser.key go together (neither: the coordinator's)")
        }
        guard (1...100_000).contains(maxConnections) else {
            throw ConfigurationError("browser.max_connections must be in 1...100000")
        }
        guard origins.count <= 64 else { throw ConfigurationError("browser.origins: at most 64") }
        for (i, origin) in origins.enumerated() where WebOrigin.canonical(origin) != origin {
            throw ConfigurationError(
                "browser.origins.\(i): \"\(origin)\" is not an origin as browsers send it (https://host[:port], lower case, no path)"
            )
        }
    }
}

/// Web origins, compared as browsers send them in `Origin`.
public enum WebOrigin {
    /// `origin` in the form a browser's `Origin` header has it — scheme and host in lower case,
    /// no user, path, query or default port — or nil when it is not an origin: a value in any
    /// other form would never match. `http` only for a loopback host (a page on the operator's
    /// own machine).
    public static func canonical(_ origin: String) -> String? {
        guard let parts = URLComponents(string: origin), let scheme = parts.scheme?.lowercased(),
            let host = parts.host?.lowercased(), !host.isEmpty, parts.user == nil, parts.password == nil,
            parts.path.isEmpty, parts.query == nil, parts.fragment == nil
        else { return nil }
        let loopback = ["127.0.0.1", "localhost", "[::1]", "::1"].contains(host)
        guard scheme == "https" || (scheme == "http" && loopback) else { return nil }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        guard let port = parts.port else { return "\(scheme)://\(shownHost)" }
        guard (1...65535).contains(port), port != (scheme == "https" ? 443 : 80) else { return nil }
        return "\(scheme)://\(shownHost):\(port)"
    }
}
