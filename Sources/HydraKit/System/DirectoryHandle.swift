#if canImport(Glibc)
import Glibc
#endif

/// An open directory, reached without following symbolic links: the safe base for creating,
/// fixing and removing entries inside it (the *at() calls), so a link planted by a user
/// cannot redirect a write made with more privilege than that user has.
public final class DirectoryHandle {
    public let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens an absolute path from `/`, refusing a symlink at any component.
    /// With `createMode`, missing components are created with that mode.
    public static func open(_ path: String, createMode: mode_t? = nil) throws(SystemError) -> DirectoryHandle {
        guard path.hasPrefix("/") else { throw SystemError("opening", path, errno: EINVAL) }
        var current = DirectoryHandle(fd: Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), path: "/")
        guard current.fd >= 0 else { throw SystemError("opening", "/") }
        for part in path.split(separator: "/").map(String.init) {
            guard part != "..", part != "." else { throw SystemError("opening", path, errno: EINVAL) }
            current = try current.subdirectory(part, createMode: createMode)
        }
        return current
    }

    /// Opens (and with `createMode` creates) a child directory, never through a symlink.
    public func subdirectory(_ name: String, createMode: mode_t? = nil) throws(SystemError) -> DirectoryHandle {
        let childPath = path == "/" ? "/\(name)" : "\(path)/\(name)"
        if let createMode, mkdirat(fd, name, createMode) != 0, errno != EEXIST {
            throw SystemError("creating directory", childPath)
        }
        let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else { throw SystemError("opening directory", childPath) }
        return DirectoryHandle(fd: child, path: childPath)
    }

    public func status() throws(SystemError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemError("stat", path) }
        return info
    }

    /// lstat of an entry (a link is reported as a link); nil when it does not exist.
    public func entryStatus(_ name: String) throws(SystemError) -> stat? {
        var info = stat()
        if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 { return info }
        if errno == ENOENT { return nil }
        throw SystemError("stat", "\(path)/\(name)")
    }

    /// Removes an entry that is not a directory (a link, socket or file), if present.
    public func removeEntry(_ name: String) throws(SystemError) {
        if unlinkat(fd, name, 0) != 0, errno != ENOENT { throw SystemError("removing", "\(path)/\(name)") }
    }

    public func setOwner(uid: UInt32, gid: UInt32, mode: mode_t) throws(SystemError) {
        guard fchown(fd, uid, gid) == 0 else { throw SystemError("changing the owner of", path) }
        guard fchmod(fd, mode) == 0 else { throw SystemError("changing the mode of", path) }
    }
}

/// An exclusive advisory lock (flock) on a file, released when the value goes away.
public final class FileLock {
    private let fd: Int32

    /// Opens or creates `name` inside `directory` (never through a link) and waits for the lock.
    public init(_ name: String, in directory: DirectoryHandle, mode: mode_t = 0o600, wait: Bool = true) throws(SystemError) {
        fd = openat(directory.fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("opening lock file", "\(directory.path)/\(name)") }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            let code = errno
            close(fd)
            throw SystemError("locking", "\(directory.path)/\(name)", errno: code)
        }
    }

    deinit { close(fd) }
}
