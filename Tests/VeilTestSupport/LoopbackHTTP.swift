import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Plain sockets on loopback for the monitoring tests: a request whose answer is read until a
/// marker appears (a server-sent-event stream never ends), and a webhook receiver that records
/// what is posted to it — or, to play a dead receiver, accepts and never answers.
public enum LoopbackHTTP {
    /// Sends `request` to 127.0.0.1:`port` and returns what came back once `marker` appears,
    /// the connection closes, or `timeout` passes.
    public static func exchange(port: Int, _ request: String, until marker: String? = nil, timeout: Double = 10)
        -> String
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return "" }
        let bytes = Array(request.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { return "" }
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) >= 0 else { break }
            guard descriptor.revents != 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            received += chunk[0..<n]
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// A GET with optional headers; returns the status code and the body.
    public static func get(port: Int, _ path: String, headers: [String: String] = [:], method: String = "GET") -> (
        status: Int, body: String
    ) {
        let lines = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        let answer = exchange(
            port: port, "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(lines)Connection: close\r\n\r\n")
        let status = answer.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    /// A connection that sends nothing.
    public final class Idle: @unchecked Sendable {
        private let fd: Int32
        public let connected: Bool

        public init(port: Int) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let socketFD = fd
            connected =
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                } == 0
        }

        /// Whether the server has closed it (a read returns end of file without waiting).
        public func closedByPeer() -> Bool {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { return false }
            var byte: UInt8 = 0
            return read(fd, &byte, 1) <= 0
        }

        public func close() { _ = Glibc.close(fd) }
    }

    /// A receiver on 127.0.0.1 that records each POST's body and answers 200 — or, with
    /// `hang`, reads the request and never answers.
    public final class Receiver: @unchecked Sendable {
        public let port: Int
        private let fd: Int32
        private let lock = NSLock()
        private var bodies: [String] = []
        private var stopped = false
        private var held: [Int32] = []

        public init(hang: Bool = false) throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var yes: Int32 = 1
            setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0, listen(listener, 16) == 0 else { throw CocoaError(.fileWriteUnknown) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
            }
            fd = listener
            port = Int(UInt16(bigEndian: address.sin_port))
            let thread = Thread { [self] in serve(hang: hang) }
            thread.start()
        }

        public var received: [String] { lock.withLock { bodies } }

        public func stop() {
            lock.withLock { stopped = true }
        }

        private func serve(hang: Bool) {
            while !lock.withLock({ stopped }) {
                var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&descriptor, 1, 100) > 0 else { continue }
                let client = accept(fd, nil, nil)
                guard client >= 0 else { continue }
                var request: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                var expected: Int?
                while true {
                    let n = read(client, &chunk, chunk.count)
                    if n <= 0 { break }
                    request += chunk[0..<n]
                    let text = String(decoding: request, as: UTF8.self)
                    guard let end = text.range(of: "\r\n\r\n") else { continue }
                    if expected == nil {
                        let length =
                            text[..<end.lowerBound].split(separator: "\r\n")
                            .first { $0.lowercased().hasPrefix("content-length:") }
                            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                        expected = text[..<end.upperBound].utf8.count + length
                    }
                    if request.count >= expected! { break }
                }
                let text = String(decoding: request, as: UTF8.self)
                let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
                lock.withLock { bodies.append(body) }
                if hang {
                    lock.withLock { held.append(client) }
                    continue
                }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = write(client, answer, answer.count)
                close(client)
            }
            for client in lock.withLock({ held }) { close(client) }
            close(fd)
        }
    }
}
