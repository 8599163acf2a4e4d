#if canImport(Glibc)
import Glibc
#endif

/// The per-user runtime directory, `<runtime_dir>/NAME`: owner the user, group the web
/// server's group, mode 2750. The notebook server's socket and the user's lock live there;
/// Apache (group) may connect to the socket, other local users cannot even look inside.
public struct RuntimeDirectory: Sendable {
    public static let mode: mode_t = 0o2750
    public let base: String

    public init(base: String) {
        self.base = base
    }

    public func path(for name: UserName) -> String { "\(base)/\(name.value)" }

    /// `isReady` for the configured web server group, looked up by name (false if it is missing).
    public static func isReady(for name: UserName, uid: UInt32, config: HydraConfig) -> Bool {
        guard let webGroup = UserDatabase.group(named: config.site.webServerGroup) else { return false }
        return RuntimeDirectory(base: config.server.runtimeDir).isReady(for: name, uid: uid, webGID: webGroup.gid)
    }

    /// Checked without privilege (the front's fast path): exists, a real directory, right owner, group and mode.
    public func isReady(for name: UserName, uid: UInt32, webGID: UInt32) -> Bool {
        var info = stat()
        guard lstat(path(for: name), &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == uid && info.st_gid == webGID
            && info.st_mode & 0o7777 == Self.mode
    }

    /// `<runtime_dir>/.front`: the front's own locks (who is starting, how many at once),
    /// owned by root, group of the web server, 0770. Lives on /run, so it is made again
    /// after a reboot by the first addldapuser call.
    public static let frontDirectoryName = ".front"

    private func prepareFrontDirectory(_ parent: DirectoryHandle, webGID: UInt32) throws(SystemError) {
        if let existing = try parent.entryStatus(Self.frontDirectoryName), existing.st_mode & S_IFMT != S_IFDIR {
            try parent.removeEntry(Self.frontDirectoryName)
        }
        let front = try parent.subdirectory(Self.frontDirectoryName, createMode: 0o770)
        let info = try front.status()
        if info.st_uid != 0 || info.st_gid != webGID || info.st_mode & 0o7777 != 0o770 {
            try front.setOwner(uid: 0, gid: webGID, mode: 0o770)
        }
    }

    /// As root: creates it, or repairs owner and mode, replacing anything that is not a real
    /// directory (a planted symlink is removed, never followed). Returns what it changed.
    @discardableResult
    public func prepare(for name: UserName, uid: UInt32, webGID: UInt32) throws(SystemError) -> [String] {
        let parent = try DirectoryHandle.open(base, createMode: 0o755)
        let parentInfo = try parent.status()
        guard parentInfo.st_uid == 0, parentInfo.st_mode & 0o022 == 0 else {
            throw SystemError("trusting", "\(base) (must be owned by root and not writable by others)", errno: EPERM)
        }
        var changes: [String] = []
        try prepareFrontDirectory(parent, webGID: webGID)
        if let existing = try parent.entryStatus(name.value), existing.st_mode & S_IFMT != S_IFDIR {
            try parent.removeEntry(name.value)
            changes.append("removed a non-directory at \(path(for: name))")
        }
        let directory = try parent.subdirectory(name.value, createMode: 0o700)
        let info = try directory.status()
        if info.st_uid != uid || info.st_gid != webGID || info.st_mode & 0o7777 != Self.mode {
            try directory.setOwner(uid: uid, gid: webGID, mode: Self.mode)
            changes.append("set \(path(for: name)) to \(name):\(webGID) mode 2750")
        }
        return changes
    }
}
