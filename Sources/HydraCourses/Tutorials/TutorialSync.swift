import HydraSystem

/// What one sync did, for ipynb-launch's JSON and its log line. Paths are relative to the folder.
package struct SyncReport: Sendable, Codable, Equatable {
    package var folder: String
    package var repo: String
    package var branch: String
    package var commit: String?
    /// Files the user had not changed, now at upstream's new version.
    package var updated: [String] = []
    package var added: [String] = []
    /// Files upstream removed that the user had not changed.
    package var removed: [String] = []
    /// Files the user changed (or created), left byte-identical although upstream changed them.
    package var kept: [String] = []
    /// `NAME.upstream.EXT` files written beside kept files.
    package var upstreamCopies: [String] = []
    /// Files the user deleted, delivered again.
    package var restored: [String] = []
    /// Paths that could not be written (a folder or link of the user's in the way).
    package var blocked: [String] = []
    /// Why the upstream could not be fetched (the files already there stay as they are).
    package var error: String?

    enum CodingKeys: String, CodingKey {
        case folder, repo, branch, commit, updated, added, removed, kept, restored, blocked, error
        case upstreamCopies = "upstream_copies"
    }

    package var summary: String {
        let counts = [("updated", updated), ("added", added), ("removed", removed), ("kept", kept),
                      ("upstream copies", upstreamCopies), ("restored", restored), ("blocked", blocked)]
            .filter { !$0.1.isEmpty }.map { "\($0.1.count) \($0.0)" }
        let what = counts.isEmpty ? "up to date" : counts.joined(separator: ", ")
        return "\(folder): \(what)" + (error.map { " (fetch failed: \($0))" } ?? "")
    }
}

extension SyncReport {
    /// A sync of `folder` that has done nothing yet (an extension keeps the memberwise init).
    package init(folder: String, repo: String, branch: String) {
        self.init(folder: folder, repo: repo, branch: branch, commit: nil)
    }
}

/// Keeps one folder of the user's home in step with one branch of a repository, by hydra's rule:
/// - a file the user never changed follows upstream (updated, added, removed);
/// - a file the user changed or created stays byte-identical; when upstream changed it too,
///   upstream's version is written beside it as `NAME.upstream.EXT`;
/// - a file the user deleted comes back (when `restoreDeleted`).
/// "Changed" means: different from what hydra last delivered. hydra's git directory lives
/// outside the folder (`~/.hydra/sync/...`) with two refs of its own: `refs/hydra/upstream`
/// (last fetched) and `refs/hydra/delivered` (last fully written). A sync that is killed
/// leaves `refs/hydra/delivering`, so the next run recognises the files it already wrote.
package struct TutorialSync: Sendable {
    package struct Source: Sendable {
        package var url: String
        package var branch: String
        package init(url: String, branch: String) {
            self.url = url
            self.branch = branch
        }
    }

    package let home: String
    package let folder: String
    package let source: Source
    package let stateDir: String
    package let restoreDeleted: Bool
    package let fetchTimeoutSeconds: Double

    package init(home: String, folder: String, source: Source, stateDir: String, restoreDeleted: Bool, fetchTimeoutSeconds: Double) {
        self.home = home
        self.folder = folder
        self.source = source
        self.stateDir = stateDir
        self.restoreDeleted = restoreDeleted
        self.fetchTimeoutSeconds = fetchTimeoutSeconds
    }

    static let upstreamRef = "refs/hydra/upstream"
    static let deliveredRef = "refs/hydra/delivered"
    /// One ref per commit a sync started writing and did not finish (`.../<commit>`).
    static let deliveringPrefix = "refs/hydra/delivering/"

    /// The name of this folder's git directory and lock: one per folder.
    var stateName: String {
        folder.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? String($0) : "_" }.joined()
    }

    package func run() throws -> SyncReport {
        var report = SyncReport(folder: folder, repo: source.url, branch: source.branch)
        let state = try DirectoryHandle.open(stateDir, createMode: 0o700)
        // One sync of this folder at a time. Every git started below holds the lock too, so a
        // git left running by a killed sync keeps it until it ends.
        let lock = try FileLock("\(stateName).lock", in: state, timeoutSeconds: fetchTimeoutSeconds + 30)
        defer { withExtendedLifetime(lock) {} }
        let staging = try state.subdirectory("staging", createMode: 0o700)
        let git = Git(gitDir: "\(stateDir)/\(stateName).git", timeoutSeconds: fetchTimeoutSeconds,
                      configFile: try Git.writeConfig("\(stateName).gitconfig", in: state, staging: staging, readableSource: source.url),
                      lockDescriptor: lock.descriptor)
        if let commit = upToDateCommit(git) {
            // The common visit: the mirror has nothing new and the last delivery finished.
            report.commit = commit
            if restoreDeleted { try restoreMissing(git: git, commit: commit, staging: staging, report: &report) }
            return report
        }
        try git.ensureRepository()
        git.removeStaleLockFiles()

        do {
            try git.run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", "--", source.url,
                         "+refs/heads/\(source.branch):\(Self.upstreamRef)"])
        } catch let failure as Git.Failure {
            report.error = failure.description
        }
        guard let upstream = git.resolve(Self.upstreamRef) else {
            report.error = report.error ?? "nothing fetched yet"
            return report
        }
        report.commit = upstream
        let delivered = git.resolve(Self.deliveredRef)
        let unfinished = try git.run(["for-each-ref", "--format=%(objectname)", Self.deliveringPrefix]).outputText
            .split(separator: "\n").map(String.init)
        staging.removeAllFiles()
        if delivered == upstream, unfinished.isEmpty {
            if restoreDeleted { try restoreMissing(git: git, commit: upstream, staging: staging, report: &report) }
            return report
        }

        // Files that unfinished syncs may already have written count as delivered too.
        var interrupted: [String: Set<String>] = [:]
        for commit in unfinished {
            for (path, blob) in try git.files(of: commit) { interrupted[path, default: []].insert(blob) }
        }
        try git.run(["update-ref", Self.deliveringPrefix + upstream, upstream])
        let upstreamFiles = try git.files(of: upstream)
        let deliveredFiles = try delivered.map { try git.files(of: $0) } ?? [:]
        let root = try DirectoryHandle.open(home).descend(folder, createMode: 0o755)
        for path in Set(upstreamFiles.keys).union(deliveredFiles.keys).union(interrupted.keys).sorted() where Self.isSafe(path) {
            try apply(path: path, upstream: upstreamFiles[path], delivered: deliveredFiles[path], interrupted: interrupted[path] ?? [],
                      root: root, staging: staging, git: git, report: &report)
        }
        // The marker advances last: until here, a killed sync is recognised by the next one.
        try git.run(["update-ref", Self.deliveredRef, upstream])
        for commit in Set(unfinished + [upstream]) { try git.run(["update-ref", "-d", Self.deliveringPrefix + commit]) }
        try? writeFileList(upstreamFiles, commit: upstream, state: state, staging: staging)
        return report
    }

    /// The delivered commit, when a fetch would bring nothing: the source is a repository on
    /// this machine (the mirror) whose branch is what was fetched last, and that was delivered
    /// in full. Read from the refs' files, without running git.
    private func upToDateCommit(_ git: Git) -> String? {
        let path = source.url.hasPrefix("file://") ? String(source.url.dropFirst(7)) : source.url
        guard path.hasPrefix("/"),
              let available = GitRefs.read(gitDir: path, ref: "refs/heads/\(source.branch)"),
              GitRefs.read(gitDir: git.gitDir, ref: Self.upstreamRef) == available,
              GitRefs.read(gitDir: git.gitDir, ref: Self.deliveredRef) == available,
              GitRefs.isEmpty(gitDir: git.gitDir, prefix: Self.deliveringPrefix) else { return nil }
        return available
    }

    /// The delivered commit's files (`blob NUL path NUL` after a first line with the commit),
    /// so the fast path can look for deleted files without running git.
    private var fileListName: String { "\(stateName).files" }

    private func writeFileList(_ files: [String: String], commit: String, state: DirectoryHandle, staging: DirectoryHandle) throws {
        var bytes = Array("\(commit)\n".utf8)
        for (path, blob) in files.sorted(by: { $0.key < $1.key }) {
            bytes += Array(blob.utf8) + [0] + Array(path.utf8) + [0]
        }
        try state.writeAtomically(fileListName, bytes, staging: staging, mode: 0o600)
    }

    /// A commit's files: from the list written at its delivery, else from git (and listed now).
    private func files(of commit: String, git: Git, staging: DirectoryHandle) throws -> [String: String] {
        let state = try DirectoryHandle.open(stateDir)
        if case .file(let bytes) = try? state.readEntry(fileListName),
           let newline = bytes.firstIndex(of: 10), String(decoding: bytes[..<newline], as: UTF8.self) == commit {
            let fields = bytes[(newline + 1)...].split(separator: 0, omittingEmptySubsequences: false).dropLast()
            var files: [String: String] = [:]
            var iterator = fields.makeIterator()
            while let blob = iterator.next(), let path = iterator.next() {
                files[String(decoding: path, as: UTF8.self)] = String(decoding: blob, as: UTF8.self)
            }
            return files
        }
        let files = try git.files(of: commit)
        try? writeFileList(files, commit: commit, state: state, staging: staging)
        return files
    }

    /// Nothing new upstream: only bring back delivered files the user deleted (a stat each).
    private func restoreMissing(git: Git, commit: String, staging: DirectoryHandle, report: inout SyncReport) throws {
        let files = try files(of: commit, git: git, staging: staging)
        let missing = files.keys.sorted().filter { path in
            Self.isSafe(path) && (try? FileStatus.ofEntry("\(home)/\(folder)/\(path)")) == .some(nil)
        }
        guard !missing.isEmpty else { return }
        let root = try DirectoryHandle.open(home).descend(folder, createMode: 0o755)
        for path in missing {
            try apply(path: path, upstream: files[path], delivered: files[path], interrupted: [],
                      root: root, staging: staging, git: git, report: &report)
        }
    }

    /// What is at a path of the folder, as the rule sees it.
    package enum Found: Equatable, Sendable {
        case missing
        /// A regular file, by its git blob id.
        case file(String)
        /// A link, a folder or anything else of the user's, at the path or on the way to it.
        case blocked
    }

    /// What the rule does with one path.
    package enum Action: Equatable, Sendable {
        /// Leave it as it is.
        case leave
        /// Write upstream's version: an update of an untouched file, a new file, or a file the
        /// user deleted, delivered again.
        case update, add, restore
        /// Upstream removed it and the user never changed it.
        case remove
        /// The user's own version stays; upstream's new version goes beside it.
        case keepWithUpstreamCopy
        /// Upstream changed it, but something of the user's is in the way: reported, untouched.
        case blocked
    }

    /// hydra's rule for one path, from what is there now, upstream's version, the version last
    /// delivered, and versions a sync that was killed may have written. Blob ids; nil: none.
    package static func decide(found: Found, upstream: String?, delivered: String?, interrupted: Set<String> = [],
                              restoreDeleted: Bool) -> Action {
        let current: String?
        switch found {
        case .blocked: return upstream != nil && upstream != delivered ? .blocked : .leave
        case .missing: current = nil
        case .file(let id): current = id
        }
        if current == upstream { return .leave }                     // already right
        if let current, current == delivered || interrupted.contains(current) {
            return upstream == nil ? .remove : .update                 // untouched: follows upstream
        }
        guard upstream != nil else { return .leave }  // upstream dropped a file that is the user's now: theirs
        if current == nil {
            if delivered == nil && interrupted.isEmpty { return .add }
            return restoreDeleted ? .restore : .leave                  // the user deleted a delivered file
        }
        // The user's own version; upstream's goes beside it only if upstream changed the file too.
        return upstream == delivered ? .leave : .keepWithUpstreamCopy
    }

    private func apply(path: String, upstream: String?, delivered: String?, interrupted: Set<String>,
                       root: DirectoryHandle, staging: DirectoryHandle, git: Git, report: inout SyncReport) throws {
        let parts = path.split(separator: "/").map(String.init)
        let name = parts.last!
        // The folder that holds the file, if it exists; a link or file of the user's in its
        // place blocks the path (never followed, never replaced).
        var directory: DirectoryHandle? = root
        var found = Found.missing
        for part in parts.dropLast() {
            guard let current = directory else { break }
            switch try current.lookup(part) {
            case .directory(let next): directory = next
            case .missing: directory = nil
            case .blocked: found = .blocked
            }
            if found == .blocked { break }
        }
        if found != .blocked {
            switch try directory?.readEntry(name) ?? .missing {
            case .missing: found = .missing
            case .file(let bytes): found = .file(GitBlobID.of(bytes))
            case .other: found = .blocked
            }
        }
        /// The folder for writing, created only now that something is written.
        func target() throws -> DirectoryHandle {
            if let directory { return directory }
            return try root.descend(parts.dropLast().joined(separator: "/"), createMode: 0o755)
        }

        let action = Self.decide(found: found, upstream: upstream, delivered: delivered, interrupted: interrupted, restoreDeleted: restoreDeleted)
        switch action {
        case .leave:
            return
        case .blocked:
            report.blocked.append(path)
        case .remove:
            try target().removeEntry(name)
            report.removed.append(path)
        case .update, .add, .restore:
            try target().writeAtomically(name, try git.blob(upstream!), staging: staging)
            switch action {
            case .update: report.updated.append(path)
            case .add: report.added.append(path)
            default: report.restored.append(path)
            }
        case .keepWithUpstreamCopy:
            report.kept.append(path)
            let copy = Self.upstreamCopyName(name)
            if case .file(let existing) = try target().readEntry(copy), GitBlobID.of(existing) == upstream { return }
            try target().writeAtomically(copy, try git.blob(upstream!), staging: staging)
            report.upstreamCopies.append((parts.dropLast() + [copy]).joined(separator: "/"))
        }
    }

    /// "lesson1.ipynb" -> "lesson1.upstream.ipynb"; "Makefile" -> "Makefile.upstream".
    package static func upstreamCopyName(_ name: String) -> String {
        if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            return "\(name[..<dot]).upstream\(name[dot...])"
        }
        return "\(name).upstream"
    }

    /// A path git may hand us that stays inside the folder (no '..', no '.git').
    static func isSafe(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.hasPrefix("/") && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0 != ".git" }
    }
}
