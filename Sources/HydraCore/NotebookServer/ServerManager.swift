import HydraSystem
import FoundationEssentials

/// What `ipynb-launch start --json` prints for the front: where the server is and its token.
package struct LaunchReport: Sendable, Encodable {
    package enum Outcome: String, Sendable, Codable {
        /// A new server was started (exit status 0).
        case started
        /// The running server answered and was kept (exit status 1).
        case reused
        /// The server's Slurm job waits in the queue (exit status 2): `queued` says why.
        case waiting

        package var exitStatus: ExitStatus {
            switch self {
            case .started: .done
            case .reused: .alreadyFine
            case .waiting: .waiting
            }
        }
    }

    package let user: String
    package let baseURL: String
    package let token: String
    package let outcome: Outcome
    /// Local: the socket, the server's PID and how it is supervised.
    package let socket: String?
    package let pid: Int32?
    package let supervisor: Supervision.Mode?
    /// Slurm: the job, its node, the node's address and the server's port there.
    package let job: String?
    package let node: String?
    package let address: String?
    package let port: Int?
    /// Slurm: the pin of the certificate the job's server shows (made by this start): the only
    /// certificate hydra-gate accepts for it.
    package let pin: String?
    /// Waiting: the queued job as squeue shows it (state, reason, expected start).
    package let queued: SlurmClient.Job?
    package let seconds: Double
    package let sync: [SyncReport]

    /// Where the server is, in words.
    package var location: String {
        if let job, let node, let address, let port { return "job \(job) on \(node) (\(address):\(port))" }
        return socket ?? "?"
    }

    enum CodingKeys: String, CodingKey {
        case user, socket, token, outcome, pid, supervisor, job, node, address, port, pin, queued, seconds, sync
        case baseURL = "base_url"
    }
}

/// What `status` and `stop` print (never the token).
package struct ServerStatus: Sendable, Encodable {
    package let user: String
    package let running: Bool
    package let pid: Int32?
    package let socket: String?
    package let started: String?
    package let lastActivity: String?
    package let kernels: Int?
    package let memoryBytes: Int?
    /// Local servers: how they run (systemd or detached) and with which limits.
    package let supervision: Supervision?
    /// systemd mode: what the server's control group recorded (OOM kills, refused forks).
    package let limitEvents: LimitEvents?
    /// Those events since the server started, in words for the person; nil when there were none.
    package let limitExplanation: String?
    /// Slurm: the job as squeue shows it, and where its server listens.
    package var job: SlurmClient.Job? = nil
    package var address: String? = nil
    package var port: Int? = nil
    /// How servers run, in words.
    package let summary: String

    enum CodingKeys: String, CodingKey {
        case user, running, pid, socket, started, kernels, supervision, job, address, port, summary
        case lastActivity = "last_activity", memoryBytes = "memory_bytes", limitEvents = "limit_events"
        case limitExplanation = "limit_explanation"
    }
}

/// One user's notebook server: start or reuse it, report on it, stop it. Runs as the user.
/// Everything happens under the user's lock in the runtime directory, so any number of
/// simultaneous visits end with one server. What every backend shares is here (the lock, the
/// home, the courses, the record, the login token); where the server runs is the backend's.
package struct ServerManager: Sendable {
    package let config: HydraConfig
    package let identity: LaunchIdentity
    package let runtimeDir: String
    let backend: any ServerBackend

    package init(config: HydraConfig, identity: LaunchIdentity) {
        self.config = config
        self.identity = identity
        self.runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        if config.server.backend == .slurm, let settings = config.slurm {
            self.backend = SlurmBackend(config: config, identity: identity, settings: settings)
        } else {
            self.backend = LocalBackend(config: config, identity: identity)
        }
    }

    package var baseURL: String { "/user/\(identity.name.value)/" }
    var home: HomeSetup { HomeSetup(config: config, account: identity.account) }

    /// The runtime directory exactly as addldapuser left it, or a refusal: a directory someone
    /// else controls could hold a socket that is not this user's server.
    func openRuntimeDir() throws -> DirectoryHandle {
        guard RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config) else {
            throw ServerFailure.runtimeDirectoryNotReady(path: runtimeDir, person: identity.name, webGroup: config.site.webServerGroup)
        }
        return try DirectoryHandle.open(runtimeDir)
    }

    /// How long the front's `start` waits for the person's lock (sudoers.d/hydra names it): not
    /// at all. The front runs one request per person at a time, so whoever holds the lock is
    /// not the front's visit (the person's own ipynb-launch, an admin's Stop, a start the front
    /// stopped waiting for), and a lock a person holds must not keep one of the front's start slots.
    package static let frontLockPatienceSeconds = 0

    /// Starts or reuses the server. `lockTimeoutSeconds`: the longest wait for another start,
    /// stop or sync of this person's server (by default as long as a start may take).
    package func start(lockTimeoutSeconds: Int? = nil) throws -> LaunchReport {
        let started = monotonicSeconds()
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime, patience: lockTimeoutSeconds.map(Double.init))
        defer { withExtendedLifetime(lock) {} }

        try home.prepare()
        let sync = home.syncCourses()
        let launched: ServerRecord
        let resumed: Bool
        switch readRecord(runtime) {
        case let record? where backend.isServing(record, in: runtime):
            try publishLoginToken(record, in: runtime)
            return report(record, outcome: .reused, since: started, sync: sync)
        case let record? where backend.isStarting(record):
            (launched, resumed) = (record, true)
        default:
            try cleanUp(runtime)
            try requireSpaceInHome()
            (launched, resumed) = (try backend.launch(token: Secret.hexToken(), in: runtime), false)
            try writeRecord(launched, in: runtime)
        }
        switch try backend.waitForServer(launched, resumed: resumed, in: runtime) {
        case .queued(let job):
            return report(launched, outcome: .waiting, queued: job, since: started, sync: sync)
        case .serving(let serving):
            if serving != launched { try writeRecord(serving, in: runtime) }
            try publishLoginToken(serving, in: runtime)
            return report(serving, outcome: .started, since: started, sync: sync)
        }
    }

    func writeRecord(_ record: ServerRecord, in runtime: DirectoryHandle) throws {
        try runtime.writeAtomically(RuntimeDirectory.Entry.record, Array(try JSONEncoder().encode(record)), staging: runtime, mode: 0o600)
    }

    /// The token of the running server, for the front (group of the web server, mode 0640): a
    /// returning visitor is then logged in without running a helper. The web server can already
    /// get the token by running `ipynb-launch start` as the user (sudoers.d/hydra); other local
    /// users cannot enter the runtime directory.
    func publishLoginToken(_ record: ServerRecord, in runtime: DirectoryHandle) throws {
        let wanted = Array(record.token.utf8)
        if case .file(let current)? = try? runtime.readEntry(RuntimeDirectory.Entry.loginToken, maxBytes: 4096), current == wanted { return }
        try runtime.writeAtomically(RuntimeDirectory.Entry.loginToken, wanted, staging: runtime, mode: 0o640)
    }

    package func status() throws -> ServerStatus {
        let runtime = try openRuntimeDir()
        return backend.status(of: readRecord(runtime), in: runtime)
    }

    /// Stops the server and forgets it. Returns whether one ran.
    @discardableResult
    package func stop() throws -> Bool {
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime)
        defer { withExtendedLifetime(lock) {} }
        let wasRunning = readRecord(runtime).map(backend.isRunning) ?? false
        try cleanUp(runtime)
        return wasRunning
    }

    // MARK: the steps

    /// The user's lock, waited for `patience` seconds, by default as long as a start may take
    /// (another start, a sync); after that, `busy` rather than a visit that hangs.
    func waitForLock(_ runtime: DirectoryHandle, patience: Double? = nil) throws -> FileLock {
        let patience = patience ?? Double(config.server.startTimeoutSeconds + config.sync.fetchTimeoutSeconds * max(1, config.courses.count))
        do {
            return try FileLock(RuntimeDirectory.Entry.lock, in: runtime, timeoutSeconds: patience)
        } catch {
            throw ServerFailure.lockTaken(path: "\(runtimeDir)/\(RuntimeDirectory.Entry.lock)", seconds: Int(patience), person: identity.name)
        }
    }

    func readRecord(_ runtime: DirectoryHandle) -> ServerRecord? {
        guard case .file(let bytes) = try? runtime.readEntry(RuntimeDirectory.Entry.record, maxBytes: 4096) else { return nil }
        return try? JSONDecoder().decode(ServerRecord.self, from: Data(bytes))
    }

    /// Ends every server of this user (the backend's part), then forgets the record and token.
    func cleanUp(_ runtime: DirectoryHandle) throws {
        try backend.cleanUp(record: readRecord(runtime), in: runtime)
        try runtime.removeEntry(RuntimeDirectory.Entry.loginToken)
        try runtime.removeEntry(RuntimeDirectory.Entry.record)
    }

    /// Jupyter writes to the home as it starts; in a full home it fails with a trace only the log
    /// shows. A clear refusal instead, before anything is started.
    func requireSpaceInHome(minimumBytes: UInt64 = 1 << 20) throws {
        guard let available = FileSystem.availableBytes(at: identity.account.home), available < minimumBytes else { return }
        throw ServerFailure.homeFull(identity.name, home: identity.account.home, availableKiB: available >> 10)
    }

    func report(_ record: ServerRecord, outcome: LaunchReport.Outcome, queued: SlurmClient.Job? = nil, since started: Double,
                sync: [SyncReport]) -> LaunchReport {
        let place = backend.place(of: record)
        return LaunchReport(user: identity.name.value, baseURL: baseURL, token: record.token, outcome: outcome,
                            socket: place.socket, pid: place.pid, supervisor: place.supervisor, job: place.job, node: place.node,
                            address: place.address, port: place.port, pin: place.pin, queued: queued,
                            seconds: (monotonicSeconds() - started).rounded(toPlaces: 3), sync: sync)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = (0..<places).reduce(1.0) { power, _ in power * 10 }
        return (self * factor).rounded() / factor
    }
}
