import Foundation

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, for at most `timeout`
/// seconds; true when it does. Tests that start a server in the background wait on this rather
/// than on a fixed sleep, which a loaded machine (CI) outlasts.
public func waitUntilListening(port: Int, timeout: Double = 60) async -> Bool {
    await eventually(timeout: timeout) { acceptsConnections(port: port) }
}

/// Polls `condition` every 50 ms for at most `timeout` seconds; true as soon as it holds.
public func eventually(timeout: Double = 60, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

private func acceptsConnections(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = loopback(port: port)
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
    } == 0
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}
