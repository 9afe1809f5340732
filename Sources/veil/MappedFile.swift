import Foundation

/// A file's bytes for reading once, quickly: a regular file of at least ``mappingThreshold``
/// bytes is mapped read-only (the page cache itself, no copy and no zeroed pages: reading ten
/// 12 MB ciphertext files into arrays cost `veil paillier add` a tenth of its time), at most
/// ``maxMapped`` at once; anything else (a small file, a pipe) is read into memory.
///
/// A mapped file that another process truncates while it is read raises SIGBUS on the missing
/// pages. A handler reports that and exits with status 1 when the faulting address is in a
/// mapped file; any other SIGBUS gets the default action, as without the handler.
final class MappedFile {
    /// Smaller files are read: a mapping costs system calls and one of the process's map areas.
    static let mappingThreshold = 1 << 16
    /// Each mapping is one of the process's map areas (65,530 by default): mapping 66,000 files
    /// left none for the allocator, which then failed (review, helper-24).
    static let maxMapped = 1024

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
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size >= Self.mappingThreshold,
            let slot = Self.freeSlot()
        {
            Self.installHandler()
            let size = Int(info.st_size)
            // MAP_POPULATE: the pages are entered now, in one call, not fault by fault.
            let address = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, 0)
            if let address, address != MAP_FAILED {
                bytes = UnsafeBufferPointer(start: address.assumingMemoryBound(to: UInt8.self), count: size)
                mapped = true
                let start = UInt(bitPattern: address)
                Self.ranges[slot] = (start, start + UInt(size))
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
            let start = UInt(bitPattern: bytes.baseAddress)
            if let slot = (0..<Self.maxMapped).first(where: { Self.ranges[$0].start == start }) {
                Self.ranges[slot] = (0, 0)
            }
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        } else {
            bytes.deallocate()
        }
    }

    /// The mapped files' address ranges, (0, 0) for a free slot: written only by the thread
    /// that maps and unmaps (before and after the parallel reading), read by the handler.
    /// Allocated once and never freed, so that the handler reads plain memory.
    nonisolated(unsafe) private static let ranges: UnsafeMutablePointer<(start: UInt, end: UInt)> = {
        let ranges = UnsafeMutablePointer<(start: UInt, end: UInt)>.allocate(capacity: maxMapped)
        ranges.initialize(repeating: (0, 0), count: maxMapped)
        return ranges
    }()

    private static func freeSlot() -> Int? {
        (0..<maxMapped).first { ranges[$0].start == 0 }
    }

    /// Installs the SIGBUS handler once; it makes only async-signal-safe calls (write, _exit,
    /// signal) and reads only `ranges`, initialised before it is installed.
    private static func installHandler() {
        _ = handlerInstalled
    }

    private static let handlerInstalled: Void = {
        _ = ranges
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = { _, info, _ in
            let address = UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr)
            for slot in 0..<MappedFile.maxMapped {
                let range = MappedFile.ranges[slot]
                if range.start <= address && address < range.end {
                    let message: StaticString = "veil: a file changed size while it was being read\n"
                    _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
                    _exit(1)
                }
            }
            // Not a mapped file's page: the default action when the access is retried.
            signal(SIGBUS, SIG_DFL)
        }
        action.sa_flags = SA_SIGINFO
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

/// Writes all of `data` to standard output (see ``writeStandardOutput(_:)-(UnsafeRawBufferPointer)``).
func writeStandardOutput(_ data: Data) throws {
    try data.withUnsafeBytes { try writeStandardOutput($0) }
}
