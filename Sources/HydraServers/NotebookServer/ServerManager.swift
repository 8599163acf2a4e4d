import HydraSite
import HydraAccounts
import HydraCourses
import HydraSystem
import FoundationEssentials

/// One user's notebook server: start or reuse it, report on it, stop it. Runs as the user.
/// Everything happens under the user's lock in the runtime directory, so any number of
/// simultaneous visits end with one server. What every backend shares is here (the lock, the
/// home, the courses, the record, the login token); where the server runs is the backend's.
package struct ServerManager: Sendable {
    package let config: HydraConfig
    package let identity: LaunchIdentity
    package let runtimeDir: String
    /// The backend that runs servers with a profile's configuration (`HydraConfig.applying`).
    let backend: @Sendable (HydraConfig) -> any ServerBackend

    package init(config: HydraConfig, identity: LaunchIdentity) {
        self.init(config: config, identity: identity) { profileConfig in
            if let settings = profileConfig.slurmJobs {
                SlurmBackend(config: profileConfig, identity: identity, settings: settings)
            } else {
                LocalBackend(config: profileConfig, identity: identity)
            }
        }
    }

    /// With any backends (a test's stand-in).
    init(config: HydraConfig, identity: LaunchIdentity, backend: @escaping @Sendable (HydraConfig) -> any ServerBackend) {
        self.config = config
        self.identity = identity
        self.runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        self.backend = backend
    }

    /// The profiles this person's groups allow.
    var allowedProfiles: [Profile] { config.profiles(forMemberOf: identity.groupNames) }

    /// The site's profile of that name (a recorded one the site may since have removed: nil).
    func profile(named name: String) -> Profile? { config.profiles.first { $0.name == name } }

    /// The configuration of the recorded server's profile, else of the person's default one.
    func profileConfig(for record: ServerRecord?) -> HydraConfig {
        let recorded = record.flatMap { profile(named: $0.profile) }
        return config.applying(recorded ?? HydraConfig.defaultProfile(of: allowedProfiles) ?? config.profiles[0])
    }

    /// The same for the person's server as recorded now: what `ipynb-launch unit` and `check` show.
    package var currentProfileConfig: HydraConfig { profileConfig(for: (try? openRuntimeDir()).flatMap(readRecord)) }

    /// The backend of the recorded server's profile, else of the person's default one.
    func backend(for record: ServerRecord?) -> any ServerBackend { backend(profileConfig(for: record)) }

    /// One backend of each kind the site's profiles use (the recorded server's own settings
    /// first): what ends every server of this person, also one of a profile since changed.
    /// `required`: whether its failure fails the caller (the recorded server's kind and the
    /// one about to start); the others' is only logged by their absence (a Slurm controller
    /// down must not stop anyone's local server from starting or stopping).
    func endingBackends(for record: ServerRecord?, starting: Profile? = nil) -> [(backend: any ServerBackend, required: Bool)] {
        let recorded = record.flatMap { profile(named: $0.profile) }
        let required = Set([recorded?.backend, starting?.backend].compactMap { $0 })
        var kinds: Set<HydraConfig.Server.Backend> = []
        return ([recorded].compactMap { $0 } + config.profiles).compactMap { profile in
            guard kinds.insert(profile.backend).inserted else { return nil }
            return (backend(config.applying(profile)), required.isEmpty || required.contains(profile.backend))
        }
    }

    package var baseURL: String { identity.name.serverPath }
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
    /// stop or sync of this person's server (by default as long as a start may take). `profile`:
    /// the one the person chose (refused unless their groups allow it); nil keeps the running
    /// server's, else takes the default.
    package func start(lockTimeoutSeconds: Int? = nil, profile asked: String? = nil) throws -> LaunchReport {
        let started = monotonicSeconds()
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime, patience: lockTimeoutSeconds.map(Double.init))
        defer { withExtendedLifetime(lock) {} }

        let record = readRecord(runtime)
        let profile: Profile
        do {
            profile = try ServerLifecycle.chooseProfile(asked: asked, recorded: record?.profile, allowed: allowedProfiles)
        } catch .notAllowed(let name) {
            throw ServerFailure.profileNotAllowed(identity.name, profile: name)
        } catch {
            throw ServerFailure.noProfileAllowed(identity.name)
        }
        try home.prepare()
        let sync = home.syncCourses()
        let backend = backend(config.applying(profile))
        // Jupyter writes to the home as it starts; in a full home it fails with a trace only the
        // log shows: a clear refusal instead, before anything is started.
        let available = FileSystem.availableBytes(at: identity.account.home)
        // Only a choice replaces a server: a start without one (a visit's sync, the person's own
        // ipynb-launch) keeps whatever runs, also a server of a profile since removed.
        let observation = ServerLifecycle.Observation(self.backend(for: record).observe(record, in: runtime, patience: ServerLifecycle.answerPatienceSeconds),
                                                      profileMatches: asked == nil || record?.profile == profile.name,
                                                      homeHasRoom: available.map { $0 >= Self.minimumRoomInHome } ?? true)
        let launched: ServerRecord
        let resumed: Bool
        let decision = ServerLifecycle.decide(observation)
        switch decision {
        case .reuse, .resume:
            // Only a sighting of a record reuses or resumes.
            guard let record else { throw StepFailure("internal error: \(decision) without a server record", status: .internalError) }
            if case .reuse = decision {
                try publishLoginToken(record, in: runtime)
                return report(record, backend: backend, outcome: .reused, since: started, sync: sync)
            }
            (launched, resumed) = (record, true)
        case .refuse(.homeFull):
            throw ServerFailure.homeFull(identity.name, home: identity.account.home, availableKiB: (available ?? 0) >> 10)
        case .launch(let reason):
            try cleanUp(runtime, starting: profile)
            var record = try backend.launch(token: Secret.hexToken(), because: reason, in: runtime)
            record.profile = profile.name
            (launched, resumed) = (record, false)
            try writeRecord(launched, in: runtime)
        }
        switch try backend.waitForServer(launched, resumed: resumed, in: runtime) {
        case .queued(let job):
            return report(launched, backend: backend, outcome: .waiting, queued: job, since: started, sync: sync)
        case .serving(let serving):
            if serving != launched { try writeRecord(serving, in: runtime) }
            try publishLoginToken(serving, in: runtime)
            return report(serving, backend: backend, outcome: .started, since: started, sync: sync)
        }
    }

    func writeRecord(_ record: ServerRecord, in runtime: DirectoryHandle) throws {
        try runtime.writeAtomically(RuntimeDirectory.Entry.record, Array(try JSONEncoder().encode(record)), staging: runtime, mode: 0o600)
    }

    /// The token of the running server, for the front (group of the web server, mode 0640): a
    /// returning visitor is then logged in without running a helper. The web server can already
    /// get the token by running `ipynb-launch start` as the user (sudoers.d/hydra); other local
    /// users cannot enter the runtime directory. Its profile beside it, for the admin page and
    /// the metrics (which take only a configured profile's name from it).
    func publishLoginToken(_ record: ServerRecord, in runtime: DirectoryHandle) throws {
        for (entry, wanted) in [(RuntimeDirectory.Entry.loginToken, record.token), (RuntimeDirectory.Entry.profile, record.profile)] {
            let bytes = Array(wanted.utf8)
            if case .file(let current)? = try? runtime.readEntry(entry, maxBytes: 4096), current == bytes { continue }
            try runtime.writeAtomically(entry, bytes, staging: runtime, mode: 0o640)
        }
    }

    package func status() throws -> ServerStatus {
        let runtime = try openRuntimeDir()
        let record = readRecord(runtime)
        var status = backend(for: record).status(of: record, in: runtime)
        status.profile = record?.profile
        return status
    }

    /// Stops the server and forgets it. Returns whether one ran.
    @discardableResult
    package func stop() throws -> Bool {
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime)
        defer { withExtendedLifetime(lock) {} }
        let record = readRecord(runtime)
        let wasRunning = backend(for: record).observe(record, in: runtime, patience: 0).stillRuns
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

    /// Ends every server of this user (the backends' part), then forgets the record and token.
    func cleanUp(_ runtime: DirectoryHandle, starting: Profile? = nil) throws {
        let record = readRecord(runtime)
        for (backend, required) in endingBackends(for: record, starting: starting) {
            if required { try backend.cleanUp(record: record, in: runtime) } else { try? backend.cleanUp(record: record, in: runtime) }
        }
        try runtime.removeEntry(RuntimeDirectory.Entry.loginToken)
        try runtime.removeEntry(RuntimeDirectory.Entry.profile)
        try runtime.removeEntry(RuntimeDirectory.Entry.record)
    }

    /// Below this, a home is too full for a server to start.
    static let minimumRoomInHome: UInt64 = 1 << 20

    func report(_ record: ServerRecord, backend: any ServerBackend, outcome: LaunchReport.Outcome, queued: SlurmClient.Job? = nil,
                since started: Double, sync: [SyncReport]) -> LaunchReport {
        LaunchReport(user: identity.name.value, baseURL: baseURL, token: record.token, outcome: outcome, profile: record.profile,
                     place: backend.place(of: record), queued: queued, seconds: (monotonicSeconds() - started).rounded(toPlaces: 3),
                     sync: sync)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = (0..<places).reduce(1.0) { power, _ in power * 10 }
        return (self * factor).rounded() / factor
    }
}
