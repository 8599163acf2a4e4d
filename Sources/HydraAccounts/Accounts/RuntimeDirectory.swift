import HydraSite
import HydraSystem
import FoundationEssentials

/// The per-user runtime directory, `<runtime_dir>/NAME`: owner the user, group the web
/// server's group, mode 2750. The notebook server's socket, the user's lock and the server log
/// live there; Apache's side (group) may connect to the socket, other local users cannot even
/// look inside. With `server.runtime_dir_size` it is a small tmpfs of its own, so what the
/// person writes there (they own it) can fill only their own directory, never /run, which
/// systemd, logind, sudo and everybody else's first visit need.
package struct RuntimeDirectory: Sendable {
    package static let mode: UInt32 = 0o2750
    package let base: String
    package let sizeBytes: UInt64?

    package init(base: String, sizeBytes: UInt64? = nil) {
        self.base = base
        self.sizeBytes = sizeBytes
    }

    package init(config: HydraConfig) {
        self.init(base: config.server.runtimeDir, sizeBytes: config.server.runtimeDirSizeBytes)
    }

    package func path(for name: UserName) -> String { "\(base)/\(name.value)" }

    /// What lives in a person's runtime directory: the one place these names are spelt.
    package enum Entry {
        /// The notebook server's socket (the person's; group: the web server's, 0660).
        package static let socket = "jupyter.sock"
        /// ipynb-launch's record of the running server (the person's alone, 0600).
        package static let record = "server.json"
        /// The running server's token for the front (group: the web server's, 0640).
        package static let loginToken = "login-token"
        /// The running server's profile, for the admin page and the metrics (as the login token: 0640).
        package static let profile = "profile"
        /// The person's lock: one start, stop or sync at a time.
        package static let lock = "lock"
        /// The server's log, kept under server.log_max_bytes (the part before: server.log.1).
        package static let log = "server.log"
        /// JUPYTER_RUNTIME_DIR (kernel connection files), the person's alone.
        package static let jupyterRuntime = "jupyter"
        /// The IPython extension that explains the site's limits in kernels (KernelLimitHelp), the person's alone.
        package static let kernelExtension = "kernel-extension"
    }

    /// `isReady` for the configured web server group, looked up by name (false if it is missing).
    package static func isReady(for name: UserName, uid: UInt32, config: HydraConfig,
                               database: any AccountDatabase = SystemAccounts()) -> Bool {
        guard let webGroup = database.group(named: config.site.webServerGroup) else { return false }
        return RuntimeDirectory(config: config).isReady(for: name, uid: uid, webGID: webGroup.gid)
    }

    /// Checked without privilege (the front's fast path): exists, a real directory, right
    /// owner, group and mode, and a file system of its own when one is configured and this
    /// machine can mount one.
    package func isReady(for name: UserName, uid: UInt32, webGID: UInt32) -> Bool {
        guard let info = try? FileStatus.ofEntry(path(for: name)) else { return false }
        guard info.kind == .directory && info.owner == uid && info.group == webGID
                && info.permissions == Self.mode else { return false }
        return sizeBytes == nil || isOwnFileSystem(info) || hasNoTmpfsNote
    }

    /// `<runtime_dir>/.no-tmpfs`: addldapuser's note (root's, in root's folder, so nobody else
    /// can make it) that this machine could not mount a person's tmpfs, e.g. a container
    /// without the right to mount or whose PID 1's namespace root may not enter. Until the next
    /// boot (it lives on /run) runtime folders are plain directories, and the front, the gate
    /// and ipynb-launch all expect that rather than refuse every visit. It holds the reason.
    package static let tmpfsUnavailableName = ".no-tmpfs"

    /// Whether the note is there: one stat, for the visit's path (the reason is for the admin).
    private var hasNoTmpfsNote: Bool {
        guard sizeBytes != nil, let info = try? FileStatus.ofEntry("\(base)/\(Self.tmpfsUnavailableName)") else { return false }
        return info.kind == .regular && info.owner == 0
    }

    /// Why this machine has no per-person tmpfs now, or nil when it has (or none is configured).
    package var tmpfsUnavailable: String? {
        guard hasNoTmpfsNote,
              case .file(let bytes)? = try? DirectoryHandle.open(base).readEntry(Self.tmpfsUnavailableName, maxBytes: 4096) else { return nil }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func isOwnFileSystem(_ info: FileStatus) -> Bool {
        guard let parent = FileStatus.following(base) else { return false }
        return parent.device != info.device
    }

    /// `<runtime_dir>/.gate/gate.sock`: where hydra-gate listens for Apache (the web server's
    /// own folder; apache/hydra.conf names the path).
    package static let gateDirectoryName = ".gate"
    package static let gateSocketName = "gate.sock"
    package var gateSocketPath: String { "\(base)/\(Self.gateDirectoryName)/\(Self.gateSocketName)" }

    /// `<runtime_dir>/.front`: the front's own locks (who is starting, how many at once),
    /// owned by root, group of the web server, 0770. Lives on /run, so it is made again
    /// after a reboot by the first addldapuser call.
    package static let frontDirectoryName = ".front"

    private func prepareFrontDirectory(_ parent: DirectoryHandle, webGID: UInt32) throws(SystemError) {
        if let existing = try parent.entryStatus(Self.frontDirectoryName), existing.kind != .directory {
            try parent.removeEntry(Self.frontDirectoryName)
        }
        let front = try parent.subdirectory(Self.frontDirectoryName, createMode: 0o770)
        let info = try front.status()
        if info.owner != 0 || info.group != webGID || info.permissions != 0o770 {
            try front.setOwner(uid: 0, gid: webGID, mode: 0o770)
        }
    }

    /// What `prepare` did: steps of a normal preparation (a directory that was simply absent,
    /// as after every reboot), and repairs of something that someone changed.
    package struct Preparation: Sendable, Equatable {
        package var steps: [String] = []
        package var repairs: [String] = []
        /// What the admin should know, said once (the tmpfs this machine cannot mount).
        package var warnings: [String] = []
    }

    /// As root: creates it (with its own file system when configured), or repairs owner and
    /// mode, replacing anything that is not a real directory (a planted symlink is removed,
    /// never followed).
    @discardableResult
    package func prepare(for name: UserName, uid: UInt32, webGID: UInt32) throws(SystemError) -> Preparation {
        let parent = try DirectoryHandle.open(base, createMode: 0o755)
        let parentInfo = try parent.status()
        guard parentInfo.owner == 0, parentInfo.permissions & 0o022 == 0 else {
            throw SystemError("trusting", "\(base) (must be owned by root and not writable by others)", errno: .notPermitted)
        }
        var done = Preparation()
        try prepareFrontDirectory(parent, webGID: webGID)
        let existing = try parent.entryStatus(name.value)
        if let existing, existing.kind != .directory {
            try parent.removeEntry(name.value)
            done.repairs.append("removed a non-directory at \(path(for: name))")
        }
        var directory = try parent.subdirectory(name.value, createMode: 0o700)
        if existing == nil || done.repairs.count > 0 { done.steps.append("created \(path(for: name))") }
        if let sizeBytes, try directory.status().device == parentInfo.device, !hasNoTmpfsNote {
            do {
                try mountFileSystem(on: directory, name: name, uid: uid, webGID: webGID, sizeBytes: sizeBytes)
                done.steps.append("mounted a \(sizeBytes >> 20) MiB tmpfs on \(path(for: name))")
            } catch {
                // The visit goes on with a plain directory; the first to find out says so.
                let reason = "\(error.description) (server.runtime_dir_size)"
                if try parent.createOnce(Self.tmpfsUnavailableName, Array((reason + "\n").utf8), mode: 0o644) {
                    done.warnings.append("no tmpfs for the runtime folders on this machine until the next boot, plain directories "
                                         + "instead (a person's files there may fill \(base)'s file system): \(reason)")
                }
            }
            // A mount, if there is one now, hides the folder opened before it.
            directory = try parent.subdirectory(name.value)
        }
        let info = try directory.status()
        if info.owner != uid || info.group != webGID || info.permissions != Self.mode {
            try directory.setOwner(uid: uid, gid: webGID, mode: Self.mode)
            // A directory made a moment ago starts as root's: setting it up is no repair.
            if done.steps.isEmpty { done.repairs.append("set \(path(for: name)) to \(name):\(webGID) mode 2750") }
        }
        return done
    }

    /// A tmpfs of `sizeBytes` on the (empty, just checked) directory, owned by the user from
    /// the start. Mounted where systemd (PID 1) sees it: under systemd, Apache and so the
    /// helpers it starts live in a mount namespace of their own (PrivateTmp), and a mount made
    /// there would be invisible to the user's server.
    private func mountFileSystem(on directory: DirectoryHandle, name: UserName, uid: UInt32, webGID: UInt32,
                                 sizeBytes: UInt64) throws(SystemError) {
        // nr_inodes bounds files as size bounds bytes: a server needs a few dozen.
        let options = "size=\(sizeBytes),nr_inodes=4096,mode=\(String(Self.mode, radix: 8)),uid=\(uid),gid=\(webGID)"
        let source = "hydra-\(name.value)"
        if Self.sharesMountNamespaceWithInit {
            // Through the descriptor already checked: no path a user could redirect.
            try FileSystem.mountTmpfs(named: source, on: directory, options: options)
            return
        }
        // In init's namespace the path is resolved afresh: only root can change anything on it
        // (the runtime_dir is root's and not writable by others, checked above).
        let result: ProcessResult
        do {
            result = try ProcessRunner.run("/usr/bin/nsenter", [
                "--mount=/proc/1/ns/mnt", "--", "/usr/bin/mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,\(options)",
                source, path(for: name),
            ])
        } catch {
            throw SystemError("mounting a tmpfs (nsenter) on", path(for: name), errno: .ioError)
        }
        guard result.status == 0 else {
            throw SystemError("mounting a tmpfs on \(path(for: name)): \(result.errorText.trimmingCharacters(in: .whitespacesAndNewlines));",
                              "nsenter --mount=/proc/1/ns/mnt mount", errno: .ioError)
        }
    }

    private static var sharesMountNamespaceWithInit: Bool {
        FileSystem.linkTarget("/proc/self/ns/mnt") == FileSystem.linkTarget("/proc/1/ns/mnt")
    }
}
