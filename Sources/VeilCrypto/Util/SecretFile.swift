#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Files of secret key material: created by `open(2)` with `O_CREAT | O_EXCL | O_NOFOLLOW` and
/// mode 0600, so that the file is never, even for an instant, readable by anyone but its owner
/// (the umask can only remove permission bits), an existing file or a symbolic link planted at
/// the path is refused rather than followed or overwritten, and a failed write leaves no file.
public enum SecretFile {
    /// Creates `path` holding `contents`.
    /// - Throws: ``SecretFileError``.
    public static func create(atPath path: String, contents: SecureBytes) throws(SecretFileError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            throw code == EEXIST ? .exists(path: path) : .cannotCreate(path: path, errno: code)
        }
        var failure: Int32?
        contents.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
            if fsync(descriptor) != 0 { failure = errno }
        }
        if close(descriptor) != 0 && failure == nil { failure = errno }
        if let failure {
            unlink(path)
            throw .cannotWrite(path: path, errno: failure)
        }
    }
}

/// Why a secret file was not written.
public enum SecretFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Something (a file, a link) is already at the path.
    case exists(path: String)
    case cannotCreate(path: String, errno: Int32)
    case cannotWrite(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .exists(let path): "\(path) already exists; refusing to overwrite it or follow a link there"
        case .cannotCreate(let path, let code): "cannot create \(path): \(String(cString: strerror(code)))"
        case .cannotWrite(let path, let code): "cannot write \(path): \(String(cString: strerror(code)))"
        }
    }
}
