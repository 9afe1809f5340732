import Foundation

/// Per-identity rate limiting: `rate` tokens a second up to `burst`; each message takes one.
package struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    package init(rate: Double, burst: Double, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        last = now
    }

    /// Takes a token if there is one.
    package mutating func take(now: ContinuousClock.Instant = .now) -> Bool {
        let elapsed = now - last
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        tokens = min(burst, tokens + seconds * rate)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

extension TokenBucket {
    /// A holder's budget of answers to its refused messages (`Specs/wire.md` §8): ten at once,
    /// then one a second; beyond it refusals are only counted, so that a peer that floods
    /// refused messages and never reads its stream cannot grow its outbox.
    package static func refusalReplies(now: ContinuousClock.Instant = .now) -> TokenBucket {
        TokenBucket(rate: 1, burst: 10, now: now)
    }
}
