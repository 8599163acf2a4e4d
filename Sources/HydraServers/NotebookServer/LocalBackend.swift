import HydraSite
import HydraAccounts
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
    var baseURL: String { identity.name.serverPath }
    var logPath: String { "\(runtimeDir)/\(RuntimeDirectory.Entry.log)" }
    var supervision: Supervision { Supervision(config: config, name: identity.name) }
    var unitName: String { SystemdUnit.name(for: identity.name) }
    var kernelLimitHelp: KernelLimitHelp { KernelLimitHelp(supervision) }
    var command: ServerCommand { ServerCommand(config: config, identity: identity) }
    var marker: String { command.marker }

    /// The file in JUPYTER_RUNTIME_DIR (the user's alone) that hands the token to the server,
    /// which reads and removes it: never in a command line or a unit's environment.
    static let tokenFile = "hydra-token"

    func place(of record: ServerRecord) -> ServerPlace {
        .local(socket: socketPath, pid: record.pid ?? 0, supervisor: supervision.mode)
    }

    /// Each fact only once the one before it holds: a dead or foreign PID is never probed.
    func observe(_ record: ServerRecord?, in runtime: DirectoryHandle, patience: Double) -> ServerLifecycle.Sighting {
        guard let record else { return .noRecord }
        guard let pid = record.pid else { return .otherBackend }
        let alive = ProcessTable.isAlive(pid)
        let owned = alive && ProcessTable.realUID(of: pid) == identity.account.uid
        let hydras = owned && ProcessTable.commandLine(of: pid).contains(marker)
        let answers = hydras && answersPatiently(for: patience, while: { ProcessTable.isAlive(pid) }) {
            probe(record, path: "api/status", in: runtime)?.status == 200
        }
        return .process(.init(alive: alive, ownedByPerson: owned, startedByHydra: hydras, answers: answers))
    }

    /// The server as it is started, in either mode.
    package func unit() -> SystemdUnit {
        var own = [
            "HYDRA_SOCK": socketPath, "JUPYTER_RUNTIME_DIR": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)",
            "HYDRA_TOKEN_FILE": "\(runtimeDir)/\(RuntimeDirectory.Entry.jupyterRuntime)/\(Self.tokenFile)", "HYDRA_LOG": logPath,
        ]
        if !kernelLimitHelp.isEmpty { own["HYDRA_KERNEL_EXTENSION"] = "\(runtimeDir)/\(RuntimeDirectory.Entry.kernelExtension)" }
        return SystemdUnit(user: identity.name, command: command.arguments, environment: command.environment(adding: own),
                           workingDirectory: identity.account.home, logPath: logPath, limits: supervision.limits)
    }

    func launch(token: String, because reason: ServerLifecycle.LaunchReason, in runtime: DirectoryHandle) throws -> ServerRecord {
        let jupyterRuntime = try runtime.subdirectory(RuntimeDirectory.Entry.jupyterRuntime, createMode: 0o700)  // JUPYTER_RUNTIME_DIR, the user's alone
        ServerLog.rotate(logPath, maxBytes: config.server.logMaxBytes)
        let supervision = supervision
        appendToLog("hydra: starting the server at \(Date()) as \(supervision.summary) (\(reason.rawValue))\n")
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
        return ServerRecord(.process(pid), token: token)
    }

    /// Looks until the server answers an authenticated request; no fixed sleep.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait {
        guard let pid = record.pid else { throw ServerFailure.exitedDuringStartup(exitStatus: nil, logTail: logTail()) }
        let begun = monotonicSeconds()
        while true {
            // Reaped if a detached child; a unit's process is systemd's child, so only its liveness is seen.
            let exitStatus = ProcessControl.reapIfEnded(pid)
            let exited = exitStatus != nil || !ProcessTable.isAlive(pid)
            let answers = !exited && probe(record, path: "api/status", in: runtime)?.status == 200
            let look = ServerLifecycle.Look(elapsed: monotonicSeconds() - begun, timeout: Double(config.server.startTimeoutSeconds),
                                            server: .process(exited: exited, answers: answers))
            switch ServerLifecycle.nextStep(look) {
            case .serving:
                return .serving(record)
            case .lookAgain(let seconds):
                pauseThread(seconds: seconds)
            case .timedOut:
                ProcessControl.signalGroup(pid, .kill)
                throw ServerFailure.startTimedOut(seconds: config.server.startTimeoutSeconds, logTail: logTail())
            case .exited, .queued, .jobLost:
                throw ServerFailure.exitedDuringStartup(exitStatus: exitStatus, logTail: logTail())
            }
        }
    }

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
        if let pid = record?.pid, ProcessTable.realUID(of: pid) == uid, ProcessTable.commandLine(of: pid).contains(marker) {
            leaders.insert(pid)
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
        var local = LocalServerStatus(socket: socketPath, supervision: supervision)
        guard let record, let pid = record.pid, observe(record, in: runtime, patience: 0) == .process(.serving),
              let answer = probe(record, path: "api/status", in: runtime) else {
            return ServerStatus(user: identity.name.value, running: false, summary: supervision.summary, activity: nil, server: .local(local))
        }
        local.pid = pid
        local.memoryBytes = Int(residentBytes(ofServer: pid))
        // A detached server shares the control group of whatever started it: its counts are not the server's.
        if supervision.mode == .systemd, let events = LimitEvents.read(serverPID: pid) {
            (local.limitEvents, local.limitExplanation) = (events, events.explanation())
        }
        return ServerStatus(user: identity.name.value, running: true, summary: supervision.summary,
                            activity: try? JSONDecoder().decode(JupyterStatus.self, from: Data(answer.body.utf8)), server: .local(local))
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
