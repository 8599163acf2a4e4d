#if canImport(Glibc)
import Glibc
#endif

/// What stat(2) says about a file, typed: its kind instead of `st_mode & S_IFMT`.
package struct FileStatus: Equatable, Sendable {
    package enum Kind: Equatable, Sendable {
        case regular, directory, symbolicLink, socket, other
    }

    package let kind: Kind
    /// The permission bits with set-id and sticky (mode & 0o7777).
    package let permissions: UInt32
    package let owner: UInt32
    package let group: UInt32
    package let size: Int
    package let device: UInt64
    package let inode: UInt64
    /// The modification time in nanoseconds since the epoch.
    package let modifiedNanoseconds: Int64

    init(_ raw: stat) {
        kind = switch raw.st_mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFLNK: .symbolicLink
        case S_IFSOCK: .socket
        default: .other
        }
        permissions = raw.st_mode & 0o7777
        owner = raw.st_uid
        group = raw.st_gid
        size = Int(raw.st_size)
        device = UInt64(raw.st_dev)
        inode = UInt64(raw.st_ino)
        modifiedNanoseconds = Int64(raw.st_mtim.tv_sec) * 1_000_000_000 + Int64(raw.st_mtim.tv_nsec)
    }

    /// The entry at `path` itself (a link is reported as a link); nil when nothing is there.
    package static func ofEntry(_ path: String) throws(SystemError) -> FileStatus? {
        var raw = stat()
        if lstat(path, &raw) == 0 { return FileStatus(raw) }
        if errno == ENOENT { return nil }
        throw SystemError("stat", path)
    }

    /// What `path` leads to, following links; nil when that cannot be read.
    package static func following(_ path: String) -> FileStatus? {
        var raw = stat()
        return stat(path, &raw) == 0 ? FileStatus(raw) : nil
    }

    /// Of an open descriptor.
    package static func of(descriptor: Int32, name: String) throws(SystemError) -> FileStatus {
        var raw = stat()
        guard fstat(descriptor, &raw) == 0 else { throw SystemError("stat", name) }
        return FileStatus(raw)
    }
}
