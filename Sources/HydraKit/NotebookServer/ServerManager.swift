import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `ipynb-launch start --json` prints for the front: where the server is and its token.
public struct LaunchReport: Sendable, Encodable {
    public enum Outcome: String, Sendable, Codable {
        /// A new server was started (exit status 0).
        case started
        /// The running server answered and was kept (exit status 1).
        case reused

        public var exitStatus: ExitStatus { self == .started ? .done : .alreadyFine }
    }

    public let user: String
    public let socket: String
    public let baseURL: String
    public let token: String
    public let outcome: Outcome
    public let pid: Int32
    public let supervisor: Supervision.Mode
    public let seconds: Double
    public let sync: [SyncReport]

    enum CodingKeys: String, CodingKey {
        case user, socket, token, outcome, pid, supervisor, seconds, sync
        case baseURL = "base_url"
    }
}

/// What `status` and `stop` print (never the token).
public struct ServerStatus: Sendable, Encodable {
    public let user: String
    public let running: Bool
    public let pid: Int32?
    public let socket: String
    public let started: String?
    public let lastActivity: String?
    public let kernels: Int?
    public let memoryBytes: Int?
    public let supervision: Supervision

    enum CodingKeys: String, CodingKey {
        case user, running, pid, socket, started, kernels, supervision
        case lastActivity = "last_activity", memoryBytes = "memory_bytes"
    }
}

/// One user's notebook server: start or reuse it, report on it, stop it. Runs as the user.
/// Everything happens under the user's lock in the runtime directory, so any number of
/// simultaneous visits end with one server.
public struct ServerManager: Sendable {
    public let config: HydraConfig
    public let identity: LaunchIdentity
    public let runtimeDir: String

    public init(config: HydraConfig, identity: LaunchIdentity) {
        self.config = config
        self.identity = identity
        self.runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
    }

    public var socketPath: String { "\(runtimeDir)/\(ServerSocket.fileName)" }
    public var baseURL: String { "/user/\(identity.name.value)/" }
    var logPath: String { "\(runtimeDir)/\(RuntimeDirectory.Entry.log)" }
    var home: HomeSetup { HomeSetup(config: config, account: identity.account) }
    public var supervision: Supervision { Supervision(config: config, name: identity.name) }
    public var unitName: String { SystemdUnit.name(for: identity.name) }
    /// Every server hydra starts for this user carries this in its command line.
    var marker: String { "--config=\(home.jupyterConfigPath)" }

    /// The runtime directory exactly as addldapuser left it, or a refusal: a directory someone
    /// else controls could hold a socket that is not this user's server.
    func openRuntimeDir() throws -> DirectoryHandle {
        guard RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config) else {
            throw StepFailure("\(runtimeDir) is missing or not owned by \(identity.name) with group \(config.site.webServerGroup) and mode 2750; run addldapuser \(identity.name) as root", status: .refused)
        }
        return try DirectoryHandle.open(runtimeDir)
    }

    public func start() throws -> LaunchReport {
        let started = monotonicSeconds()
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime)
        defer { withExtendedLifetime(lock) {} }

        try home.prepare()
        let sync = home.syncCourses()
        if let record = readRecord(runtime), isServing(record, in: runtime) {
            try publishLoginToken(record, in: runtime)
            return report(record, outcome: .reused, since: started, sync: sync)
        }
        try cleanUp(runtime)
        try requireSpaceInHome()
        let record = try launch(runtime)
        try waitUntilServing(record, in: runtime)
        try publishLoginToken(record, in: runtime)
        return report(record, outcome: .started, since: started, sync: sync)
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


    public func status() throws -> ServerStatus {
        let runtime = try openRuntimeDir()
        guard let record = readRecord(runtime), isServing(record, in: runtime),
              let answer = probe(record, path: "api/status", in: runtime) else {
            return ServerStatus(user: identity.name.value, running: false, pid: nil, socket: socketPath, started: nil,
                                lastActivity: nil, kernels: nil, memoryBytes: nil, supervision: supervision)
        }
        let info = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any]
        return ServerStatus(user: identity.name.value, running: true, pid: record.pid, socket: socketPath,
                            started: info?["started"] as? String, lastActivity: info?["last_activity"] as? String,
                            kernels: info?["kernels"] as? Int, memoryBytes: UserProcesses.groupRSS(record.pid),
                            supervision: supervision)
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after 10 s. Returns whether one ran.
    @discardableResult
    public func stop() throws -> Bool {
        let runtime = try openRuntimeDir()
        let lock = try waitForLock(runtime)
        defer { withExtendedLifetime(lock) {} }
        let wasRunning = readRecord(runtime).map { UserProcesses.isAlive($0.pid) } ?? false
        try cleanUp(runtime)
        return wasRunning
    }

    // MARK: the steps

    /// The user's lock, waited for as long as a start may take (another start, a sync); after
    /// that, a temporary failure rather than a visit that hangs.
    func waitForLock(_ runtime: DirectoryHandle) throws -> FileLock {
        let patience = Double(config.server.startTimeoutSeconds + config.sync.fetchTimeoutSeconds * max(1, config.courses.count))
        do {
            return try FileLock(RuntimeDirectory.Entry.lock, in: runtime, timeoutSeconds: patience)
        } catch {
            throw StepFailure("\(runtimeDir)/lock stayed taken for \(Int(patience)) s (another start or sync of \(identity.name) is running)",
                              status: .temporaryFailure)
        }
    }

    func readRecord(_ runtime: DirectoryHandle) -> ServerRecord? {
        guard case .file(let bytes) = try? runtime.readEntry(RuntimeDirectory.Entry.record, maxBytes: 4096) else { return nil }
        return try? JSONDecoder().decode(ServerRecord.self, from: Data(bytes))
    }

    /// This user's own server, answering an authenticated probe on a socket this user owns.
    func isServing(_ record: ServerRecord, in runtime: DirectoryHandle) -> Bool {
        guard UserProcesses.isAlive(record.pid), UserProcesses.realUID(of: record.pid) == identity.account.uid,
              UserProcesses.commandLine(of: record.pid).contains(marker) else { return false }
        return probe(record, path: "api/status", in: runtime)?.status == 200
    }

    /// The token goes only to this user's own server (ServerSocket's checks), in the directory checked above.
    func probe(_ record: ServerRecord, path: String, in runtime: DirectoryHandle) -> ServerSocket.Answer? {
        ServerSocket.get(in: runtime, ownerUID: identity.account.uid, path: baseURL + path, host: "localhost",
                         token: record.token, timeoutSeconds: 5)
    }

    /// Ends every server process of this user that hydra started (including one half-started
    /// by a killed ipynb-launch that never wrote its record), then removes the socket and record.
    func cleanUp(_ runtime: DirectoryHandle) throws {
        let uid = identity.account.uid
        var leaders = Set(UserProcesses.matching(uid: uid, marker: marker))
        if let record = readRecord(runtime), UserProcesses.realUID(of: record.pid) == uid,
           UserProcesses.commandLine(of: record.pid).contains(marker) {
            leaders.insert(record.pid)
        }
        if supervision.mode == .systemd {
            // The unit goes first (systemd ends its whole control group), and a failed one is
            // forgotten so that the name is free for the next start.
            _ = try? inUserManager("/usr/bin/systemctl", ["--user", "stop", unitName])
            _ = try? inUserManager("/usr/bin/systemctl", ["--user", "reset-failed", unitName])
        }
        for pid in leaders {
            kill(-pid, SIGTERM)
            kill(pid, SIGTERM)
        }
        let deadline = monotonicSeconds() + 10
        while leaders.contains(where: UserProcesses.isAlive), monotonicSeconds() < deadline { usleep(50_000) }
        for pid in leaders {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
        while leaders.contains(where: UserProcesses.isAlive), monotonicSeconds() < deadline + 5 { usleep(20_000) }
        try? runtime.subdirectory(RuntimeDirectory.Entry.jupyterRuntime).removeEntry(Self.tokenFile)
        try runtime.removeEntry(RuntimeDirectory.Entry.loginToken)
        try runtime.removeEntry(ServerSocket.fileName)
        try runtime.removeEntry(RuntimeDirectory.Entry.record)
    }

    /// The file in JUPYTER_RUNTIME_DIR (the user's alone) that hands the token to the server,
    /// which reads and removes it: never in a command line or a unit's environment.
    static let tokenFile = "hydra-token"

    /// The server as it is started, in either mode.
    public func unit() -> SystemdUnit {
        var command = config.server.command
        if !command[0].hasPrefix("/") { command[0] = "\(config.server.pythonEnv)/bin/\(command[0])" }
        let account = identity.account
        let environment = [
            "HOME": account.home, "USER": account.name, "LOGNAME": account.name, "SHELL": account.shell,
            "PATH": "\(config.server.pythonEnv)/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HYDRA_USER": account.name, "HYDRA_SOCK": socketPath, "JUPYTER_RUNTIME_DIR": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)",
            "HYDRA_TOKEN_FILE": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)/\(Self.tokenFile)", "HYDRA_LOG": logPath,
        ]
        return SystemdUnit(user: identity.name, command: command + [marker], environment: environment,
                           workingDirectory: account.home, logPath: logPath, limits: supervision.limits)
    }

    func launch(_ runtime: DirectoryHandle) throws -> ServerRecord {
        let jupyterRuntime = try runtime.subdirectory(RuntimeDirectory.Entry.jupyterRuntime, createMode: 0o700)  // JUPYTER_RUNTIME_DIR, the user's alone
        rotateLog()
        let supervision = supervision
        appendToLog("hydra: starting the server at \(Date()) as \(supervision.summary)\n")
        let token = Secret.hexToken()
        try jupyterRuntime.writeAtomically(Self.tokenFile, Array(token.utf8), staging: jupyterRuntime, mode: 0o600)
        let unit = unit()
        let pid: pid_t
        switch supervision.mode {
        case .systemd:
            pid = try startUnit(unit)
        case .detached:
            try supervision.applyProcessLimits()
            // Files the server creates are the user's alone (homes stay private).
            let previousMask = umask(0o077)
            defer { umask(previousMask) }
            let spawned = Result { () throws(SystemError) -> pid_t in
                try ProcessRunner.spawnDetached(unit.command[0], Array(unit.command.dropFirst()),
                                                environment: Dictionary(uniqueKeysWithValues: unit.environment),
                                                workingDirectory: unit.workingDirectory, logPath: logPath)
            }
            if case .failure(let error) = spawned, error.code == EAGAIN {
                throw StepFailure("\(identity.name) has as many processes as limits.tasks_max allows (\(supervision.limits.tasksMax ?? 0)); "
                                  + "the server cannot start until some end", status: .temporaryFailure)
            }
            pid = try spawned.get()
        }
        let record = ServerRecord(pid: pid, token: token, started: Date().timeIntervalSince1970)
        let data = try JSONEncoder().encode(record)
        try runtime.writeAtomically(RuntimeDirectory.Entry.record, Array(data), staging: runtime, mode: 0o600)
        return record
    }

    /// Jupyter writes to the home as it starts; in a full home it fails with a trace only the log
    /// shows. A clear refusal instead, before anything is started.
    func requireSpaceInHome(minimumBytes: UInt64 = 1 << 20) throws {
        var info = statvfs()
        guard statvfs(identity.account.home, &info) == 0 else { return }
        let available = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        guard available < minimumBytes else { return }
        throw StepFailure("the home of \(identity.name) (\(identity.account.home)) is full: \(available >> 10) KiB free; "
                          + "the server starts once there is space", status: .homeFull)
    }

    /// `systemd-run --user` into the user's own manager, then the unit's main PID.
    func startUnit(_ unit: SystemdUnit) throws -> pid_t {
        try supervision.requireAvailable()
        // Lingering starts the user's manager at boot; just after addldapuser enabled it, it may still be starting.
        let bus = Supervision.userManagerBus(uid: identity.account.uid)
        let deadline = monotonicSeconds() + 10
        while access(bus, F_OK) != 0 {
            guard monotonicSeconds() < deadline else {
                throw StepFailure("the systemd user manager of \(identity.name) is not running (no \(bus)); addldapuser \(identity.name) "
                                  + "enables it (loginctl enable-linger \(identity.name))", status: .temporaryFailure)
            }
            usleep(100_000)
        }
        let started = try inUserManager("/usr/bin/systemd-run", unit.systemdRunArguments)
        guard started.status == 0 else {
            throw StepFailure("systemd-run \(unit.name) failed: \(started.errorText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let shown = try inUserManager("/usr/bin/systemctl", ["--user", "show", "--property=MainPID", "--value", unit.name])
        guard let pid = pid_t(shown.outputText.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw StepFailure("\(unit.name) has no main process after systemd-run; its log ends:\n\(logTail())")
        }
        return pid
    }

    /// systemctl or systemd-run, with the environment that reaches this user's own manager.
    func inUserManager(_ program: String, _ arguments: [String]) throws -> ProcessResult {
        var options = ProcessRunner.Options()
        let uid = identity.account.uid
        options.environment["XDG_RUNTIME_DIR"] = "/run/user/\(uid)"
        options.environment["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=\(Supervision.userManagerBus(uid: uid))"
        return try ProcessRunner.run(program, arguments, options: options)
    }

    func appendToLog(_ line: String) {
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard log >= 0 else { return }
        _ = line.utf8CString.withUnsafeBufferPointer { write(log, $0.baseAddress, $0.count - 1) }
        close(log)
    }

    /// Returns once the server answers an authenticated request; no fixed sleep.
    func waitUntilServing(_ record: ServerRecord, in runtime: DirectoryHandle) throws {
        let deadline = monotonicSeconds() + Double(config.server.startTimeoutSeconds)
        while monotonicSeconds() < deadline {
            var status: Int32 = 0
            // waitpid for a detached child; a unit's process is systemd's child, so only its liveness is seen.
            if waitpid(record.pid, &status, WNOHANG) == record.pid || !UserProcesses.isAlive(record.pid) {
                throw StepFailure("the notebook server exited during start-up (status \(status)); its log ends:\n\(logTail())")
            }
            if probe(record, path: "api/status", in: runtime)?.status == 200 { return }
            usleep(25_000)
        }
        kill(-record.pid, SIGKILL)
        throw StepFailure("the notebook server did not answer within \(config.server.startTimeoutSeconds) s; its log ends:\n\(logTail())",
                          status: .temporaryFailure)
    }

    /// Keeps the log under `server.log_max_bytes`: the previous one becomes server.log.1.
    func rotateLog() {
        var info = stat()
        if lstat(logPath, &info) == 0, Int(info.st_size) > config.server.logMaxBytes / 2 {
            rename(logPath, logPath + ".1")
        }
    }

    func logTail(lines: Int = 15) -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func report(_ record: ServerRecord, outcome: LaunchReport.Outcome, since started: Double, sync: [SyncReport]) -> LaunchReport {
        LaunchReport(user: identity.name.value, socket: socketPath, baseURL: baseURL, token: record.token, outcome: outcome,
                     pid: record.pid, supervisor: supervision.mode, seconds: (monotonicSeconds() - started).rounded(toPlaces: 3), sync: sync)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}
