import NIOCore
import Synchronization

/// How many connections an HTTP port holds at once, in all and from one address: each holds a
/// descriptor, and the port is open to whoever can reach it. ``admit(_:)`` in a server's child
/// channel initializer closes a connection over either limit at once, and counts it off when it
/// closes.
final class ConnectionLimit: Sendable {
    let total: Int
    /// nil: no limit per address.
    let perAddress: Int?
    private let open = Mutex<(total: Int, byAddress: [String: Int])>((0, [:]))

    init(total: Int, perAddress: Int? = nil) {
        self.total = total
        self.perAddress = perAddress
    }

    /// Admits `channel`, or closes it (the returned future) when a limit is reached.
    func admit(_ channel: any Channel) -> EventLoopFuture<Void>? {
        let address = channel.remoteAddress?.ipAddress ?? "?"
        let admitted = open.withLock { open in
            guard open.total < total, perAddress.map({ open.byAddress[address, default: 0] < $0 }) ?? true else {
                return false
            }
            open.total += 1
            open.byAddress[address, default: 0] += 1
            return true
        }
        guard admitted else { return channel.close() }
        channel.closeFuture.whenComplete { _ in
            self.open.withLock { open in
                open.total -= 1
                open.byAddress[address]! -= 1
                if open.byAddress[address] == 0 { open.byAddress[address] = nil }
            }
        }
        return nil
    }
}
