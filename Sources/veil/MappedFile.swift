import Foundation

/// A file's bytes for reading once, quickly: a regular file is mapped read-only (the page cache
/// itself, no copy and no zeroed pages: reading ten 12 MB ciphertext files into arrays cost
/// `veil paillier add` a tenth of its time), anything else (a pipe) is read into memory.
///
/// A mapped file that another process truncates while it is read would raise SIGBUS on the
/// missing pages; ``bytes`` installs a handler that reports that and exits with status 1,
/// instead of the crash the signal would otherwise be.
final class MappedFile {
    /// The bytes, valid while this object lives.
    let bytes: UnsafeBufferPointer<UInt8>
    private let mapped: Bool

    /// Maps or reads `path`.
    /// - Throws: a usage error naming the path when it cannot be opened or read.
    init(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw usageError("cannot read \(path)") }
        defer { close(descriptor) }
        var info = stat()
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 {
            Self.reportTruncation()
            let size = Int(info.st_size)
            // MAP_POPULATE: the pages are entered now, in one call, not fault by fault.
            let address = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, 0)
            if let address, address != MAP_FAILED {
                bytes = UnsafeBufferPointer(start: address.assumingMemoryBound(to: UInt8.self), count: size)
                mapped = true
                return
            }
        }
        // From the descriptor already open: opening a pipe again would find its writer gone.
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw usageError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            data.append(contentsOf: chunk[..<got])
        }
        let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: data.count)
        _ = copy.initialize(from: data)
        bytes = UnsafeBufferPointer(copy)
        mapped = false
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        } else {
            bytes.deallocate()
        }
    }

    /// Installs, once, the SIGBUS handler: only async-signal-safe calls (write, _exit).
    private static func reportTruncation() {
        _ = installHandler
    }

    private static let installHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let message: StaticString = "veil: a file changed size while it was being read\n"
            _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
            _exit(1)
        }
        sigemptyset(&action.sa_mask)
        _ = sigaction(SIGBUS, &action, nil)
    }()
}

/// Writes all of `bytes` to standard output (write(2) in a loop: FileHandle traps on an error
/// such as a closed pipe).
/// - Throws: a usage error when standard output refuses them.
func writeStandardOutput(_ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
        let written = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0, errno == EINTR { continue }
        guard written > 0 else {
            throw usageError("cannot write to standard output: \(String(cString: strerror(errno)))")
        }
        offset += written
    }
}
