#if canImport(Glibc)
import Glibc
#endif

/// Path-based file calls for places where no user controls the path (hydra's own files in
/// root-owned or the person's own directories); where a user might plant a link, use
/// DirectoryHandle instead.
package enum FileSystem {
    /// Whether something is at `path` (following links, as access(2) does).
    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Whether the caller may execute `path` (following links, as access(2) does).
    package static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Renames `from` to `to`, replacing it.
    package static func rename(_ from: String, to: String) throws(SystemError) {
        guard Glibc.rename(from, to) == 0 else { throw SystemError("renaming", "\(from) to \(to)") }
    }

    /// Removes a file or link; gone already is fine.
    package static func remove(_ path: String) throws(SystemError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw SystemError("removing", path) }
    }

    /// Bytes an unprivileged user may still write on the file system holding `path`.
    package static func availableBytes(at path: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    /// Appends `text` to the file at `path` (created with `mode`, never through a link).
    package static func append(_ text: String, to path: String, mode: UInt32 = 0o600) throws(SystemError) {
        let file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else { throw SystemError("opening", path) }
        defer { close(file) }
        let bytes = Array(text.utf8)
        guard retryingInterrupted({ bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) } }) == bytes.count else {
            throw SystemError("writing", path)
        }
    }

    /// Creates the file at `path` (with `mode`, never through a link) or sets its times to now.
    package static func touch(_ path: String, mode: UInt32) throws(SystemError) {
        let file = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else { throw SystemError("opening", path) }
        defer { Glibc.close(file) }
        guard futimens(file, nil) == 0 else { throw SystemError("touching", path) }
    }

    /// The text of the file at `path` (its last component never a link; the folders on the way
    /// may be), or nil when there is no such file, it is not a regular file, or it is larger
    /// than `maxBytes`.
    package static func readText(_ path: String, maxBytes: Int = 1 << 20) -> String? {
        let (folder, name) = split(path)
        guard case .file(let bytes)? = try? DirectoryHandle.openFollowingLinks(folder).readEntry(name, maxBytes: maxBytes) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Replaces the file at `path` atomically (a reader sees the old file or the new one) with
    /// exactly `mode`; the staging file is in the same folder. A link at the last component is
    /// replaced, never written through.
    package static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws(SystemError) {
        let (folder, name) = split(path)
        let directory = try DirectoryHandle.openFollowingLinks(folder)
        try directory.writeAtomically(name, bytes, staging: directory, mode: mode)
    }

    /// The names in the folder at `path` (not "." and ".."), or nil when it cannot be read.
    package static func entryNames(in path: String) -> [String]? {
        (try? DirectoryHandle.openFollowingLinks(path))?.entryNames()
    }

    /// Where the link at `path` points, or nil when it is not a link.
    package static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes `path` the working directory.
    package static func changeDirectory(_ path: String) throws(SystemError) {
        guard chdir(path) == 0 else { throw SystemError("changing into", path) }
    }

    /// The folder and the last component of `path`.
    package static func split(_ path: String) -> (folder: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let folder = String(path[..<slash])
        return (folder.isEmpty ? "/" : folder, String(path[path.index(after: slash)...]))
    }

    /// Mounts a fresh tmpfs (nosuid, nodev, noexec) on the directory `directory` is open on,
    /// through its descriptor, so a link swapped in after the open is not followed.
    package static func mountTmpfs(named source: String, on directory: DirectoryHandle, options: String) throws(SystemError) {
        let flags = UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC)
        guard options.withCString({ mount(source, "/proc/self/fd/\(directory.fd)", "tmpfs", flags, $0) }) == 0 else {
            throw SystemError("mounting a tmpfs on", directory.path)
        }
    }
}

/// The process's standard output, written whole (a short write is continued).
package enum StandardStreams {
    package static func writeOutput(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = retryingInterrupted { bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) } }
            guard count > 0 else { return }
            offset += count
        }
    }
}
