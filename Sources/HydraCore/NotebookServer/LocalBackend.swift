import HydraSystem
import FoundationEssentials

/// The server on this machine: a systemd user unit or a detached process, as the person,
/// listening on `jupyter.sock` in the person's runtime directory.
package struct LocalBackend: ServerBackend {
    let config: HydraConfig
    let identity: LaunchIdentity
    let runtimeDir: String

    package init(config: HydraConfig, identity: LaunchIdentity) {
        self.config = config
        self.identity = identity
        self.runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
    }

    var socketPath: String { "\(runtimeDir)/\(ServerSocket.fileName)" }
    var baseURL: String { "/user/\(identity.name.value)/" }
    var logPath: String { "\(runtimeDir)/\(RuntimeDirectory.Entry.log)" }
    var home: HomeSetup { HomeSetup(config: config, account: identity.account) }
    var supervision: Supervision { Supervision(config: config, name: identity.name) }
    var unitName: String { SystemdUnit.name(for: identity.name) }
    var kernelLimitHelp: KernelLimitHelp { KernelLimitHelp(supervision) }
    /// Every server hydra starts for this user carries this in its command line.
    var marker: String { "--config=\(home.jupyterConfigPath)" }

    /// The file in JUPYTER_RUNTIME_DIR (the user's alone) that hands the token to the server,
    /// which reads and removes it: never in a command line or a unit's environment.
    static let tokenFile = "hydra-token"

    func place(of record: ServerRecord?) -> ServerPlace {
        ServerPlace(socket: socketPath, pid: record?.pid, supervisor: supervision.mode, summary: supervision.summary)
    }

    /// The server as it is started, in either mode.
    package func unit() -> SystemdUnit {
        var command = config.server.command
        if !command[0].hasPrefix("/") { command[0] = "\(config.server.pythonEnv)/bin/\(command[0])" }
        let account = identity.account
        var environment = [
            "HOME": account.home, "USER": account.name, "LOGNAME": account.name, "SHELL": account.shell,
            "PATH": "\(config.server.pythonEnv)/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HYDRA_USER": account.name, "HYDRA_SOCK": socketPath, "JUPYTER_RUNTIME_DIR": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)",
            "HYDRA_TOKEN_FILE": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)/\(Self.tokenFile)", "HYDRA_LOG": logPath,
        ]
        if !kernelLimitHelp.isEmpty { environment["HYDRA_KERNEL_EXTENSION"] = "\(runtimeDir)/\(RuntimeDirectory.Entry.kernelExtension)" }
        return SystemdUnit(user: identity.name, command: command + [marker], environment: environment,
                           workingDirectory: account.home, logPath: logPath, limits: supervision.limits)
    }

    func launch(token: String, in runtime: DirectoryHandle) throws -> ServerRecord {
        let jupyterRuntime = try runtime.subdirectory(RuntimeDirectory.Entry.jupyterRuntime, createMode: 0o700)  // JUPYTER_RUNTIME_DIR, the user's alone
        ServerLog.rotate(logPath, maxBytes: config.server.logMaxBytes)
        let supervision = supervision
        appendToLog("hydra: starting the server at \(Date()) as \(supervision.summary)\n")
        if !kernelLimitHelp.isEmpty {
            try kernelLimitHelp.write(into: try runtime.subdirectory(RuntimeDirectory.Entry.kernelExtension, createMode: 0o700))
        }
        try jupyterRuntime.writeAtomically(Self.tokenFile, Array(token.utf8), staging: jupyterRuntime, mode: 0o600)
        let unit = unit()
        let pid: Int32
        switch supervision.mode {
        case .systemd:
            pid = try startUnit(unit)
        case .detached:
            try supervision.applyProcessLimits()
            // Files the server creates are the user's alone (homes stay private).
            let spawned = Result { () throws(SystemError) -> Int32 in
                try ProcessControl.withFileCreationMask(0o077) { () throws(SystemError) -> Int32 in
                    try ProcessRunner.spawnDetached(unit.command[0], Array(unit.command.dropFirst()),
                                                    environment: Dictionary(uniqueKeysWithValues: unit.environment),
                                                    workingDirectory: unit.workingDirectory, logPath: logPath)
                }
            }
            if case .failure(let error) = spawned, error.code == .wouldBlock {
                throw ServerFailure.tooManyProcesses(identity.name, tasksMax: supervision.limits.tasksMax ?? 0)
            }
            pid = try spawned.get()
        }
        return ServerRecord(pid: pid, token: token, started: Date().timeIntervalSince1970)
    }

    /// Returns once the server answers an authenticated request; no fixed sleep.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait {
        let deadline = monotonicSeconds() + Double(config.server.startTimeoutSeconds)
        while monotonicSeconds() < deadline {
            // Reaped if a detached child; a unit's process is systemd's child, so only its liveness is seen.
            let exitStatus = ProcessControl.reapIfEnded(record.pid)
            if exitStatus != nil || !ProcessTable.isAlive(record.pid) {
                throw ServerFailure.exitedDuringStartup(exitStatus: exitStatus, logTail: logTail())
            }
            if probe(record, path: "api/status", in: runtime)?.status == 200 { return .serving(record) }
            pauseThread(seconds: 0.025)
        }
        ProcessControl.signalGroup(record.pid, .kill)
        throw ServerFailure.startTimedOut(seconds: config.server.startTimeoutSeconds, logTail: logTail())
    }

    /// This user's own server, answering an authenticated probe on a socket this user owns.
    func isServing(_ record: ServerRecord, in runtime: DirectoryHandle) -> Bool {
        guard isRunning(record), ProcessTable.realUID(of: record.pid) == identity.account.uid,
              ProcessTable.commandLine(of: record.pid).contains(marker) else { return false }
        return probe(record, path: "api/status", in: runtime)?.status == 200
    }

    func isRunning(_ record: ServerRecord) -> Bool { ProcessTable.isAlive(record.pid) }

    /// A local server starts within one visit, under the lock: one that does not serve is stuck.
    func isStarting(_ record: ServerRecord) -> Bool { false }

    /// The token goes only to this user's own server (ServerSocket's checks), in the directory checked above.
    func probe(_ record: ServerRecord, path: String, in runtime: DirectoryHandle) -> ServerSocket.Answer? {
        ServerSocket.get(in: runtime, ownerUID: identity.account.uid, path: baseURL + path, host: "localhost",
                         token: record.token, timeoutSeconds: 5)
    }

    /// SIGTERM to every server process group of this user that hydra started (found by the
    /// marker in its command line, so also one whose record was never written), SIGKILL after
    /// 10 s; then the socket and the token file go.
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws {
        let uid = identity.account.uid
        var leaders = Set(ProcessTable.matching(uid: uid, marker: marker))
        if let record, ProcessTable.realUID(of: record.pid) == uid, ProcessTable.commandLine(of: record.pid).contains(marker) {
            leaders.insert(record.pid)
        }
        if supervision.mode == .systemd {
            // The unit goes first (systemd ends its whole control group), and a failed one is
            // forgotten so that the name is free for the next start.
            _ = try? inUserManager("/usr/bin/systemctl", ["--user", "stop", unitName])
            _ = try? inUserManager("/usr/bin/systemctl", ["--user", "reset-failed", unitName])
        }
        for pid in leaders { ProcessControl.signalProcessAndGroup(pid, .terminate) }
        let deadline = monotonicSeconds() + 10
        while leaders.contains(where: ProcessTable.isAlive), monotonicSeconds() < deadline { pauseThread(seconds: 0.05) }
        for pid in leaders { ProcessControl.signalProcessAndGroup(pid, .kill) }
        while leaders.contains(where: ProcessTable.isAlive), monotonicSeconds() < deadline + 5 { pauseThread(seconds: 0.02) }
        try? runtime.subdirectory(RuntimeDirectory.Entry.jupyterRuntime).removeEntry(Self.tokenFile)
        try runtime.removeEntry(ServerSocket.fileName)
    }

    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus {
        guard let record, isServing(record, in: runtime), let answer = probe(record, path: "api/status", in: runtime) else {
            return ServerStatus(user: identity.name.value, running: false, pid: nil, socket: socketPath, started: nil,
                                lastActivity: nil, kernels: nil, memoryBytes: nil, supervision: supervision,
                                limitEvents: nil, limitExplanation: nil, summary: supervision.summary)
        }
        let info = try? JSONDecoder().decode(JupyterStatus.self, from: Data(answer.body.utf8))
        // A detached server shares the control group of whatever started it: its counts are not the server's.
        let events = supervision.mode == .systemd ? LimitEvents.read(serverPID: record.pid) : nil
        return ServerStatus(user: identity.name.value, running: true, pid: record.pid, socket: socketPath,
                            started: info?.started, lastActivity: info?.last_activity,
                            kernels: info?.kernels, memoryBytes: Int(residentBytes(ofServer: record.pid)),
                            supervision: supervision, limitEvents: events, limitExplanation: events?.explanation(),
                            summary: supervision.summary)
    }

    /// The server's memory with its kernels': jupyter_client starts each kernel in a session and
    /// process group of its own, so the server's process tree is what counts.
    func residentBytes(ofServer pid: Int32) -> UInt64 {
        ProcessTable.tree(of: pid, in: ProcessTable.snapshot(minimumUID: identity.account.uid)).reduce(0) { $0 + $1.residentBytes }
    }

    /// `systemd-run --user` into the user's own manager, then the unit's main PID.
    func startUnit(_ unit: SystemdUnit) throws -> Int32 {
        try supervision.requireAvailable()
        // Lingering starts the user's manager at boot; just after addldapuser enabled it, it may still be starting.
        let bus = Supervision.userManagerBus(uid: identity.account.uid)
        let deadline = monotonicSeconds() + 10
        while !FileSystem.exists(bus) {
            guard monotonicSeconds() < deadline else {
                throw ServerFailure.userManagerNotRunning(identity.name, bus: bus)
            }
            pauseThread(seconds: 0.1)
        }
        let started = try inUserManager("/usr/bin/systemd-run", unit.systemdRunArguments)
        guard started.status == 0 else {
            throw ServerFailure.systemdRunFailed(unit: unit.name, error: started.errorText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let shown = try inUserManager("/usr/bin/systemctl", ["--user", "show", "--property=MainPID", "--value", unit.name])
        guard let pid = Int32(shown.outputText.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else {
            throw ServerFailure.noMainProcess(unit: unit.name, logTail: logTail())
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
        try? FileSystem.append(line, to: logPath)
    }

    func logTail() -> String { ServerLog.tail(of: [logPath]) }
}

/// The fields of Jupyter's `api/status` that `ipynb-launch status` reports.
struct JupyterStatus: Decodable {
    let started: String?
    let last_activity: String?
    let kernels: Int?
}
