import CSodium

/// Bytes that hold a secret: zeroed with `sodium_memzero` when the last copy is released,
/// compared in constant time with `sodium_memcmp`, and never printed.
///
/// A value type with copy-on-write storage, like swift-crypto's `SecureBytes`: copies share
/// one buffer until one of them is mutated, so a secret is never duplicated by accident.
public struct SecureBytes: Sendable {
    private var storage: Storage

    /// `count` zero bytes.
    public init(zeros count: Int) {
        precondition(count >= 0, "negative byte count")
        storage = Storage(count: count)
    }

    /// Copies `bytes`. The caller remains responsible for wiping its own copy.
    public init(copying bytes: some Collection<UInt8>) {
        storage = Storage(count: bytes.count)
        storage.bytes.copyBytes(from: bytes)
    }

    /// `count` bytes from libsodium's system generator (`randombytes_buf`).
    public static func random(count: Int) -> SecureBytes {
        Sodium.ensureInitialized()
        var out = SecureBytes(zeros: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return out
    }

    /// `count` bytes drawn from an injected generator, 8 at a time, each `next()` written
    /// little-endian; the last draw is truncated to what is needed.
    public static func random(count: Int, using generator: inout some RandomNumberGenerator) -> SecureBytes {
        var out = SecureBytes(zeros: count)
        out.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < count {
                var word = generator.next().littleEndian
                let n = min(8, count - offset)
                Swift.withUnsafeBytes(of: &word) {
                    buffer.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n)
                }
                sodium_memzero(&word, 8)
                offset += n
            }
        }
        return out
    }

    /// The number of bytes.
    public var count: Int { storage.bytes.count }

    /// Whether there are no bytes.
    public var isEmpty: Bool { count == 0 }

    /// Reads the bytes. Do not let the pointer escape or copy the bytes into unmanaged memory.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage.bytes))
    }

    /// Writes the bytes in place (copying the storage first if another value shares it).
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try body(storage.bytes)
    }

    /// A new secret holding `range` of these bytes.
    public func slice(_ range: Range<Int>) -> SecureBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "slice out of bounds")
        var out = SecureBytes(zeros: range.count)
        out.withUnsafeMutableBytes { target in
            withUnsafeBytes { source in
                if !range.isEmpty {
                    target.baseAddress!.copyMemory(from: source.baseAddress! + range.lowerBound, byteCount: range.count)
                }
            }
        }
        return out
    }

    /// These bytes followed by `other`'s, in a new secret.
    public func appending(_ other: SecureBytes) -> SecureBytes {
        var out = SecureBytes(zeros: count + other.count)
        out.withUnsafeMutableBytes { target in
            withUnsafeBytes {
                if !$0.isEmpty { target.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            other.withUnsafeBytes {
                if !$0.isEmpty { (target.baseAddress! + count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        return out
    }

    /// Copies the secret out as plain bytes — for encodings that must leave the process
    /// (an encrypted share's plaintext is sealed immediately; test vectors). Use sparingly.
    public func unsafeExposedBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    private final class Storage: @unchecked Sendable {
        // Mutated only through a uniquely referenced `SecureBytes`, hence the unchecked Sendable.
        private let allocation: UnsafeMutableRawBufferPointer
        private let count: Int

        init(count: Int) {
            // A zero-byte secret still gets a real allocation so that C calls see a valid pointer.
            allocation = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
            allocation.initializeMemory(as: UInt8.self, repeating: 0)
            self.count = count
        }

        var bytes: UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(start: allocation.baseAddress, count: count)
        }

        func copy() -> Storage {
            let other = Storage(count: count)
            other.allocation.copyMemory(from: UnsafeRawBufferPointer(allocation))
            return other
        }

        deinit {
            sodium_memzero(allocation.baseAddress!, allocation.count)
            allocation.deallocate()
        }
    }
}

extension SecureBytes: Equatable {
    /// Constant-time comparison of the contents (the lengths are public and compared first).
    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.count == 0 { return true }
        return lhs.withUnsafeBytes { a in
            rhs.withUnsafeBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
    }
}

extension SecureBytes: CustomStringConvertible, CustomDebugStringConvertible {
    /// Names the size only: a secret never reaches a log, an error or a test failure message.
    public var description: String { "SecureBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
}

extension SecureBytes: CustomReflectable {
    /// No children: `dump` and debuggers' summaries show the size, never the bytes.
    public var customMirror: Mirror { Mirror(self, children: [:], displayStyle: .struct) }
}
