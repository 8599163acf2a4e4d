import HydraSite
import HydraSystem
import FoundationEssentials

/// The shared, read-only mirror of a course repository, fetched by the web server's account at
/// most once per `sync.fetch_interval_seconds` for everybody; users' syncs read it locally.
package struct Mirror: Sendable {
    package let config: HydraConfig
    package let course: HydraConfig.Course

    package init(config: HydraConfig, course: HydraConfig.Course) {
        self.config = config
        self.course = course
    }

    /// `<mirror_dir>/<first 16 hex digits of sha1(repo URL)>.git`
    package var path: String {
        "\(config.sync.mirrorDir)/\(GitBlobID.of(Array(course.repo.utf8)).prefix(16)).git"
    }

    /// The time stamp of the last successful fetch; without one the mirror is not used.
    var stampPath: String { "\(path).fetched" }
    package var exists: Bool { FileSystem.exists(stampPath) }

    /// Where a user's sync reads from: the mirror when it exists, else the upstream itself.
    package var syncSource: TutorialSync.Source {
        .init(url: exists ? path : course.repo, branch: course.branch)
    }

    /// Why the last fetch failed, kept beside the mirror until a fetch succeeds (for the admin page).
    var errorPath: String { "\(path).error" }

    /// When the last successful fetch ended.
    package var lastFetch: Date? {
        guard let stamp = try? FileStatus.ofEntry(stampPath) else { return nil }
        return Date(timeIntervalSince1970: Double(stamp.modifiedNanoseconds) / 1e9)
    }

    /// The last fetch's error, if it failed.
    package var lastError: String? {
        FileSystem.readText(errorPath).map { String($0.prefix(2000)) }
    }

    package enum Outcome: String, Sendable, Encodable { case fresh, fetched, busy }

    /// Fetches when the last fetch is older than the interval. Another process already fetching
    /// means `.busy`: the caller goes on with the mirror as it is, and upstream is asked once.
    @discardableResult
    package func refreshIfStale(now: Date = Date()) throws -> Outcome {
        if let modified = lastFetch, now.timeIntervalSince(modified) < Double(config.sync.fetchIntervalSeconds) {
            return .fresh
        }
        do {
            let outcome = try fetch()
            if outcome == .fetched { try? FileSystem.remove(errorPath) }
            return outcome
        } catch {
            try? FileSystem.writeAtomically(errorPath, Array("\(error)".utf8))
            throw error
        }
    }

    private func fetch() throws -> Outcome {
        let stamp = stampPath
        let directory = try DirectoryHandle.open(config.sync.mirrorDir, createMode: 0o755)
        let lock: FileLock
        do {
            lock = try FileLock(".\(URL(fileURLWithPath: path).lastPathComponent).lock", in: directory, mode: 0o600, wait: false)
        } catch {
            return .busy
        }
        defer { withExtendedLifetime(lock) {} }
        // The fetch's git holds the lock too: one left running by a killed caller keeps others out.
        let staging = try directory.subdirectory(".staging", createMode: 0o700)
        let configFile = try Git.writeConfig(".\(URL(fileURLWithPath: path).lastPathComponent).gitconfig", in: directory,
                                             staging: staging, readableSource: course.repo)
        let git = Git(gitDir: path, timeoutSeconds: Double(config.sync.fetchTimeoutSeconds), configFile: configFile,
                      lockDescriptor: lock.descriptor)
        try git.ensureRepository()
        git.removeStaleLockFiles()
        try git.run(["fetch", "--quiet", "--prune", "--no-tags", "--depth=1", "--", course.repo, "+refs/heads/*:refs/heads/*"])
        // The stamp's modification time is the time of the last successful fetch.
        try FileSystem.writeAtomically(stamp, [])
        return .fetched
    }
}
