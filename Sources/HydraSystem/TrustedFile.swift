#if canImport(Glibc)
import Glibc
#endif

/// Reads files that only root can have written: the configuration and the LDAP bind password.
/// The path is walked from `/` one component at a time without following any symlink, and every
/// directory on the way and the file itself must be owned by root and not writable by group or
/// others (the same rule sudo applies to sudoers).
package enum TrustedFile {
    package enum Failure: Error, Equatable {
        case missing
        case unreadable(String)
        case untrusted(String)
    }

    /// - Parameter secret: the file must also be unreadable by group and others (a password).
    package static func read(_ path: String, secret: Bool = false, maxBytes: Int = 1 << 20) throws(Failure) -> [UInt8] {
        guard path.hasPrefix("/") else { throw .untrusted("not an absolute path") }
        let parts = path.split(separator: "/").map(String.init)
        guard !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else { throw .untrusted("path with '.' or '..'") }

        var directory = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw .unreadable("cannot open /") }
        defer { close(directory) }
        try check(directory, name: "/", secret: false)
        for part in parts.dropLast() {
            let next = openat(directory, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw failure(for: errno, at: part) }
            close(directory)
            directory = next
            try check(directory, name: part, secret: false)
        }
        let file = openat(directory, parts.last!, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard file >= 0 else { throw failure(for: errno, at: parts.last!) }
        defer { close(file) }
        guard let info = try? FileStatus.of(descriptor: file, name: path), info.kind == .regular else {
            throw .untrusted("not a regular file")
        }
        try check(file, name: path, secret: secret)
        guard info.size <= maxBytes else { throw .unreadable("larger than \(maxBytes) bytes") }

        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = retryingInterrupted { Glibc.read(file, &buffer, buffer.count) }
            guard count >= 0 else { throw .unreadable(String(cString: strerror(errno))) }
            if count == 0 { break }
            bytes += buffer[0..<count]
            guard bytes.count <= maxBytes else { throw .unreadable("larger than \(maxBytes) bytes") }
        }
        return bytes
    }

    private static func check(_ fd: Int32, name: String, secret: Bool) throws(Failure) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
        guard info.st_uid == 0 else { throw .untrusted("\(name) is owned by UID \(info.st_uid), not root") }
        guard info.st_mode & 0o022 == 0 else {
            throw .untrusted("\(name) is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8)))")
        }
        if secret, info.st_mode & 0o077 != 0 {
            throw .untrusted("\(name) is readable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8))); make it 0600")
        }
    }

    private static func failure(for code: Int32, at part: String) -> Failure {
        switch code {
        case ENOENT: .missing
        case ELOOP: .untrusted("\(part) is a symbolic link")
        case ENOTDIR: .untrusted("\(part) is not a directory")
        default: .unreadable("\(part): \(String(cString: strerror(code)))")
        }
    }
}
