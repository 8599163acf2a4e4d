#if canImport(Glibc)
import Glibc
#endif

/// An open directory, reached without following symbolic links: the safe base for creating,
/// fixing and removing entries inside it (the *at() calls), so a link planted by a user
/// cannot redirect a write made with more privilege than that user has.
package final class DirectoryHandle {
    package let fd: Int32
    package let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens an absolute path from `/`, refusing a symlink at any component.
    /// With `createMode`, missing components are created with that mode.
    package static func open(_ path: String, createMode: mode_t? = nil) throws(SystemError) -> DirectoryHandle {
        guard path.hasPrefix("/") else { throw SystemError("opening", path, errno: .invalidArgument) }
        var current = DirectoryHandle(fd: Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: "/")
        guard current.fd >= 0 else { throw SystemError("opening", "/") }
        for part in path.split(separator: "/").map(String.init) {
            guard part != "..", part != "." else { throw SystemError("opening", path, errno: .invalidArgument) }
            current = try current.subdirectory(part, createMode: createMode)
        }
        return current
    }

    /// Opens a directory of hydra's own or the system's by its path, following links on the
    /// way (an admin's linked /opt or /home); what is then done inside it follows none.
    package static func openFollowingLinks(_ path: String) throws(SystemError) -> DirectoryHandle {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("opening", path) }
        return DirectoryHandle(fd: fd, path: path)
    }

    package enum Lookup {
        case directory(DirectoryHandle)
        case missing
        /// A file, link or anything else that is not a directory is in the way.
        case blocked
    }

    /// A child directory if there is one, without creating or following anything.
    package func lookup(_ name: String) throws(SystemError) -> Lookup {
        let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if child >= 0 {
            let childPath = path == "/" ? "/\(name)" : "\(path)/\(name)"
            return .directory(DirectoryHandle(fd: child, path: childPath))
        }
        switch errno {
        case ENOENT: return .missing
        case ELOOP, ENOTDIR: return .blocked
        default: throw SystemError("opening directory", "\(path)/\(name)")
        }
    }

    /// Walks a relative path one component at a time (creating missing ones with `createMode`),
    /// so a link anywhere on the way is refused, never followed.
    package func descend(_ relativePath: String, createMode: mode_t? = nil) throws(SystemError) -> DirectoryHandle {
        var current = self
        for part in relativePath.split(separator: "/").map(String.init) {
            guard part != "..", part != "." else { throw SystemError("opening", relativePath, errno: .invalidArgument) }
            current = try current.subdirectory(part, createMode: createMode)
        }
        return current
    }

    /// Opens (and with `createMode` creates) a child directory, never through a symlink.
    package func subdirectory(_ name: String, createMode: mode_t? = nil) throws(SystemError) -> DirectoryHandle {
        let childPath = path == "/" ? "/\(name)" : "\(path)/\(name)"
        if let createMode, mkdirat(fd, name, createMode) != 0, errno != EEXIST {
            throw SystemError("creating directory", childPath)
        }
        let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw SystemError("opening directory", childPath) }
        return DirectoryHandle(fd: child, path: childPath)
    }

    package func status() throws(SystemError) -> FileStatus {
        try FileStatus.of(descriptor: fd, name: path)
    }

    /// lstat of an entry (a link is reported as a link); nil when it does not exist.
    package func entryStatus(_ name: String) throws(SystemError) -> FileStatus? {
        var info = stat()
        if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 { return FileStatus(info) }
        if errno == ENOENT { return nil }
        throw SystemError("stat", "\(path)/\(name)")
    }

    /// Creates the symbolic link `name` -> `target` unless something is already there
    /// (which is left as it is); true when it was created.
    @discardableResult
    package func makeSymbolicLink(_ name: String, to target: String) throws(SystemError) -> Bool {
        if symlinkat(target, fd, name) == 0 { return true }
        if errno == EEXIST { return false }
        throw SystemError("linking", "\(path)/\(name) -> \(target)")
    }

    /// Removes an entry that is not a directory (a link, socket or file), if present.
    package func removeEntry(_ name: String) throws(SystemError) {
        if unlinkat(fd, name, 0) != 0, errno != ENOENT { throw SystemError("removing", "\(path)/\(name)") }
    }

    /// What is at `name`, read without following a link.
    package enum Entry: Equatable {
        case missing
        /// A directory, link, socket, ...: not a file hydra may treat as content.
        case other
        case file([UInt8])
    }

    package func readEntry(_ name: String, maxBytes: Int = 1 << 30) throws(SystemError) -> Entry {
        let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if file < 0 {
            switch errno {
            case ENOENT: return .missing
            case ELOOP, ENOTDIR, EISDIR, ENXIO: return .other
            default: throw SystemError("opening", "\(path)/\(name)")
            }
        }
        defer { close(file) }
        let info = try FileStatus.of(descriptor: file, name: "\(path)/\(name)")
        guard info.kind == .regular else { return .other }
        guard info.size <= maxBytes else { throw SystemError("reading", "\(path)/\(name)", errno: Errno(EFBIG)) }
        var bytes = [UInt8](repeating: 0, count: info.size)
        var offset = 0
        while offset < bytes.count {
            let count = retryingInterrupted { bytes.withUnsafeMutableBytes { Glibc.read(file, $0.baseAddress! + offset, $0.count - offset) } }
            guard count >= 0 else { throw SystemError("reading", "\(path)/\(name)") }
            if count == 0 { break }
            offset += count
        }
        return .file(Array(bytes.prefix(offset)))
    }

    /// Writes `bytes` to `name` atomically: a temporary file in `staging` (same file system),
    /// then a rename over the target, with exactly `mode`. A reader sees the old file or the new
    /// one, never half.
    package func writeAtomically(_ name: String, _ bytes: [UInt8], staging: DirectoryHandle, mode: mode_t = 0o644) throws(SystemError) {
        // A name of its own for each write: the front's threads write in one folder at once.
        let temporary = "write-\(getpid())-\(Secret.hexToken(byteCount: 8))"
        let file = openat(staging.fd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else { throw SystemError("creating", "\(staging.path)/\(temporary)") }
        fchmod(file, mode)  // exactly `mode`, whatever the umask
        var offset = 0
        while offset < bytes.count {
            let count = retryingInterrupted { bytes.withUnsafeBytes { Glibc.write(file, $0.baseAddress! + offset, $0.count - offset) } }
            guard count > 0 else {
                let code = errno
                close(file)
                unlinkat(staging.fd, temporary, 0)
                throw SystemError("writing", "\(path)/\(name)", errno: Errno(code))
            }
            offset += count
        }
        close(file)
        guard renameat(staging.fd, temporary, fd, name) == 0 else {
            let code = errno
            unlinkat(staging.fd, temporary, 0)
            throw SystemError("renaming into", "\(path)/\(name)", errno: Errno(code))
        }
    }

    /// Puts `bytes` at `name` only if nothing is there yet: a temporary file, complete, then
    /// linked into place, so a reader never sees half and two writers never replace each
    /// other's file. False when something already was there (which is left as it is).
    package func createOnce(_ name: String, _ bytes: [UInt8], mode: mode_t) throws(SystemError) -> Bool {
        let temporary = "once-\(getpid())-\(Secret.hexToken(byteCount: 8))"
        try writeAtomically(temporary, bytes, staging: self, mode: mode)
        defer { unlinkat(fd, temporary, 0) }
        if linkat(fd, temporary, fd, name, 0) == 0 { return true }
        if errno == EEXIST { return false }
        throw SystemError("linking into", "\(path)/\(name)")
    }

    /// The names in this directory, without "." and "..".
    package func entryNames() -> [String] {
        guard let stream = fdopendir(dup(fd)) else { return [] }
        defer { closedir(stream) }
        rewinddir(stream)  // the duplicate shares the offset a listing before left at the end
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes every entry of this directory that is not a directory (for a staging folder).
    package func removeAllFiles() {
        for name in entryNames() { unlinkat(fd, name, 0) }
    }

    package func setOwner(uid: UInt32, gid: UInt32, mode: mode_t) throws(SystemError) {
        guard fchown(fd, uid, gid) == 0 else { throw SystemError("changing the owner of", path) }
        guard fchmod(fd, mode) == 0 else { throw SystemError("changing the mode of", path) }
    }
}

/// An exclusive advisory lock (flock) on a file, released when the value goes away, and by
/// any child process that was handed `descriptor` only when that child ends too.
package final class FileLock {
    package let descriptor: Int32
    private var fd: Int32 { descriptor }

    /// Opens or creates `name` inside `directory` (never through a link) and takes the lock:
    /// waiting for it (at most `timeoutSeconds`, when given), or only if free (`wait: false`).
    /// A lock another process of the same user holds is no reason to wait forever.
    package init(_ name: String, in directory: DirectoryHandle, mode: mode_t = 0o600, wait: Bool = true,
                timeoutSeconds: Double? = nil) throws(SystemError) {
        descriptor = openat(directory.fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw SystemError("opening lock file", "\(directory.path)/\(name)") }
        let deadline = timeoutSeconds.map { monotonicSeconds() + $0 }
        let blocking = wait && deadline == nil
        while retryingInterrupted({ flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB)) }) != 0 {
            if errno == EWOULDBLOCK, let deadline, monotonicSeconds() < deadline {
                pauseThread(seconds: 0.02)
                continue
            }
            let code = errno
            close(fd)
            throw SystemError("locking", "\(directory.path)/\(name)", errno: Errno(code))
        }
    }

    deinit { close(fd) }
}
