/// What every target needs: the input as bytes, and a failure that libFuzzer reports as a crash.
///
/// The oracle of every target is the same: a decoder may accept or refuse any input, but it must
/// refuse with a typed Swift error (never a trap, a hang or unbounded memory), and whatever it
/// accepts must re-encode to something it decodes to the same value.

/// The fuzzer's input, copied out of libFuzzer's buffer.
public func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}

/// Reports a broken property: libFuzzer records the input as a crash.
public func violated(_ property: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz oracle: \(property)", file: file, line: line)
}

/// Checks a decoder's round trip: `value` (decoded from the input) encodes to bytes that decode
/// to an equal value, and that re-encode to the same bytes (one encoding per value).
public func checkRoundTrip<Value: Equatable, Encoded: Equatable>(
    _ what: String, _ value: Value, encode: (Value) throws -> Encoded, decode: (Encoded) throws -> Value
) {
    let encoded: Encoded
    let again: Value
    do {
        encoded = try encode(value)
        again = try decode(encoded)
    } catch {
        violated("\(what): an accepted value does not round-trip: \(error)")
    }
    guard again == value else { violated("\(what): decode(encode(x)) != x") }
    guard (try? encode(again)) == encoded else { violated("\(what): encode is not deterministic") }
}

/// Splits the input into a selector byte and the rest.
public func split(_ input: [UInt8]) -> (selector: UInt8, rest: [UInt8])? {
    guard let first = input.first else { return nil }
    return (first, Array(input.dropFirst()))
}

/// A fixed stream of random numbers, so that a target's fixtures are the same in every run and
/// a crashing input reproduces (swift-argument-parser's `Examples/roll/SplitMix64.swift`).
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
