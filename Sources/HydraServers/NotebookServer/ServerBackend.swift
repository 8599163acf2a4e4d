import HydraSite
import HydraAccounts
import HydraSystem

/// Where a person's notebook server runs, and how it is observed, started and ended: the
/// backend observes and acts, `ServerLifecycle` decides. `ServerManager` calls it under the
/// person's lock, and keeps what every backend shares: the home, the courses, the record in
/// the runtime directory and the front's login token.
protocol ServerBackend: Sendable {
    /// Where the record's server is, as `start --json` reports it.
    func place(of record: ServerRecord) -> ServerPlace
    /// What the system says of the server the record names (nothing of the record is trusted).
    /// A live server that does not answer is asked again for `patience` seconds (0: once).
    func observe(_ record: ServerRecord?, in runtime: DirectoryHandle, patience: Double) -> ServerLifecycle.Sighting

    /// Starts a server that accepts `token`; returns at once with its record, before it answers.
    /// `reason` goes into the server's log.
    func launch(token: String, because reason: ServerLifecycle.LaunchReason, in runtime: DirectoryHandle) throws -> ServerRecord
    /// Looks at the starting server until `ServerLifecycle.nextStep` says it serves (with the
    /// record completed by what only the running server knows: a job's node and port) or that
    /// it waits for a place (a queued job); throws why it never will. `resumed`: a later visit
    /// looking in on a server an earlier one started.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait
    /// Ends every server of this person the backend started, including a half-started one
    /// whose record was never written.
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws
    /// What `ipynb-launch status` reports.
    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus
}

extension ServerBackend {
    /// Whether `ask()` says yes before `patience` seconds pass, asked again every quarter
    /// second while `alive()` holds (a server that has ended is not waited for).
    func answersPatiently(for patience: Double, while alive: () -> Bool = { true }, _ ask: () -> Bool) -> Bool {
        let deadline = monotonicSeconds() + patience
        while true {
            if ask() { return true }
            guard monotonicSeconds() < deadline, alive() else { return false }
            pauseThread(seconds: 0.25)
        }
    }
}

/// How a wait for a server ended.
enum ServerWait: Equatable {
    case serving(ServerRecord)
    /// A Slurm job still queued: its state, reason and Slurm's expected start.
    case queued(SlurmClient.Job)
}

extension ServerLifecycle.Sighting {
    /// A server still runs there (answering or not), or a job still holds its place: what a stop ends.
    var stillRuns: Bool {
        switch self {
        case .noRecord, .otherBackend: false
        case .process(let process): process.alive && process.ownedByPerson && process.startedByHydra
        case .job(let job): job.phase == .running || job.phase == .waiting
        }
    }
}

/// What a person's server runs with, on either backend: the site's command (a bare name is
/// server.python_env's), carrying the marker every server hydra starts for this person has,
/// and the environment both backends give it before their own variables.
struct ServerCommand {
    let config: HydraConfig
    let identity: LaunchIdentity

    /// In the command line of every server hydra starts for this person (how one whose record
    /// was never written is still found).
    var marker: String { "--config=\(HomeSetup(config: config, account: identity.account).jupyterConfigPath)" }

    var arguments: [String] {
        var command = config.server.command
        if !command[0].hasPrefix("/") { command[0] = "\(config.server.pythonEnv)/bin/\(command[0])" }
        return command + [marker]
    }

    /// Merged with a backend's own variables (which must not repeat these).
    func environment(adding own: [String: String]) -> [String: String] {
        let account = identity.account
        return own.merging([
            "HOME": account.home, "USER": account.name, "LOGNAME": account.name, "SHELL": account.shell,
            "PATH": "\(config.server.pythonEnv)/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HYDRA_USER": account.name,
        ]) { _, shared in shared }
    }
}
