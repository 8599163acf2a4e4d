import HydraSystem
import FoundationEssentials

/// The server as a Slurm job on a compute node (`[server] backend = "slurm"`), submitted by
/// ipynb-launch as the person, so Slurm applies the person's own account, limits and fair share.
/// Homes are shared between the web host and the nodes: what the job needs and what it leaves
/// for ipynb-launch (token, endpoint, logs) is in `~/.hydra/slurm/`, the person's alone.
/// The server listens on TCP on its node, on a port of `[slurm] port_range`; every request needs
/// the person's token or login cookie, since every account on the node can connect.
package struct SlurmBackend: ServerBackend {
    let config: HydraConfig
    let identity: LaunchIdentity
    let settings: SlurmSettings

    package init(config: HydraConfig, identity: LaunchIdentity, settings: SlurmSettings) {
        self.config = config
        self.identity = identity
        self.settings = settings
    }

    var client: SlurmClient { SlurmClient(settings: settings) }
    var home: HomeSetup { HomeSetup(config: config, account: identity.account) }
    var baseURL: String { "/user/\(identity.name.value)/" }
    var uid: UInt32 { identity.account.uid }
    /// Every job hydra submits for this person has this name, so a job whose record was never
    /// written is still found and cancelled.
    var jobName: String { "hydra-\(identity.name.value)" }
    var jobDir: String { "\(home.hydraDir)/slurm" }
    var logPath: String { "\(jobDir)/\(Entry.log)" }

    /// The files of `~/.hydra/slurm/`.
    enum Entry {
        /// The job script sbatch copies at submission.
        static let script = "job.sh"
        /// The token, read once and removed by the server (never in a command line or sbatch's
        /// environment, which `scontrol show job` would show).
        static let token = "token"
        /// "JOB HOSTNAME PORT", written by the server once it listens.
        static let endpoint = "endpoint"
        /// The key and certificate made for this start: the server moves them to its node's
        /// job-private folder as it starts (the key never stays in the home), and serves TLS.
        static let key = "tls.key"
        static let certificate = "tls.crt"
        /// The server's own capped log, and the job's output (Slurm's, and anything before Jupyter's log starts).
        static let log = "server.log"
        static let output = "job.out"
    }

    /// Constant text: the command and every value come as arguments and environment, never
    /// through the script. Kernels talk over IPC files in a directory of the node's own /tmp
    /// that only this job uses, removed when the server ends.
    static let jobScript = """
        #!/bin/sh
        # Written by hydra's ipynb-launch: this person's notebook server as a Slurm job.
        JUPYTER_RUNTIME_DIR=$(mktemp -d /tmp/hydra-jupyter.XXXXXXXX) || exit 1
        export JUPYTER_RUNTIME_DIR
        trap 'rm -rf "$JUPYTER_RUNTIME_DIR"' EXIT
        trap 'exit 143' TERM
        cd "$HOME" || exit 1
        "$@"

        """

    func place(of record: ServerRecord?) -> ServerPlace {
        ServerPlace(job: record?.job, node: record?.node, address: record?.address, port: record?.port, pin: record?.pin, summary: summary)
    }

    var summary: String { settings.summary }

    /// The server's command, with the marker every hydra server carries.
    var command: [String] {
        var command = config.server.command
        if !command[0].hasPrefix("/") { command[0] = "\(config.server.pythonEnv)/bin/\(command[0])" }
        return command + ["--config=\(home.jupyterConfigPath)"]
    }

    /// Exactly what the job gets (sbatch adds Slurm's own SLURM_* variables).
    var environment: [String: String] {
        let account = identity.account
        return [
            "HOME": account.home, "USER": account.name, "LOGNAME": account.name, "SHELL": account.shell,
            "PATH": "\(config.server.pythonEnv)/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HYDRA_USER": account.name, "HYDRA_PORT_RANGE": "\(settings.portRange.lowerBound) \(settings.portRange.upperBound)",
            "HYDRA_TOKEN_FILE": "\(jobDir)/\(Entry.token)", "HYDRA_ENDPOINT_FILE": "\(jobDir)/\(Entry.endpoint)", "HYDRA_LOG": logPath,
            "HYDRA_TLS_KEY": "\(jobDir)/\(Entry.key)", "HYDRA_TLS_CERT": "\(jobDir)/\(Entry.certificate)",
        ]
    }

    func openJobDir() throws -> DirectoryHandle {
        try DirectoryHandle.open(home.hydraDir).subdirectory("slurm", createMode: 0o700)
    }

    func launch(token: String, in runtime: DirectoryHandle) throws -> ServerRecord {
        let jobDir = try openJobDir()
        try jobDir.removeEntry(Entry.endpoint)
        ServerLog.rotate(logPath, maxBytes: config.server.logMaxBytes)
        try jobDir.writeAtomically(Entry.token, Array(token.utf8), staging: jobDir, mode: 0o600)
        // Requests and the token cross the cluster's network: TLS, with a certificate made here
        // for this start only and pinned by ipynb-launch's probe and by hydra-gate.
        let certificate = try PinnedCertificate.make(commonName: jobName)
        try jobDir.writeAtomically(Entry.key, certificate.keyPEM, staging: jobDir, mode: 0o600)
        try jobDir.writeAtomically(Entry.certificate, certificate.certificatePEM, staging: jobDir, mode: 0o600)
        try jobDir.writeAtomically(Entry.script, Array(Self.jobScript.utf8), staging: jobDir, mode: 0o700)
        let job = try client.submit(jobName: jobName, outputPath: "\(self.jobDir)/\(Entry.output)", workingDirectory: identity.account.home,
                                    script: "\(self.jobDir)/\(Entry.script)", arguments: command, environment: environment)
        return ServerRecord(pid: 0, token: token, started: Date().timeIntervalSince1970, job: job, pin: certificate.pin)
    }

    /// How long a visit waits for a queued job before it reports that the job waits: a new job
    /// on a cluster with room starts within a second or two, so a first visit goes straight to
    /// the lab; a later visit (the starting page reloading) only looks in, holding no front
    /// worker for long.
    static let queuePatienceSeconds = (new: 10.0, resumed: 1.0)

    /// Waits for the job to run and its server to answer the token at the node's address, or
    /// reports it queued. A queued job keeps its place: the next visit looks in on the same job.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait {
        guard let id = record.job else { throw ServerFailure.jobLost(job: "?", logTail: logTail()) }
        let begun = monotonicSeconds()
        let deadline = begun + Double(config.server.startTimeoutSeconds)
        let queueDeadline = begun + (resumed ? Self.queuePatienceSeconds.resumed : Self.queuePatienceSeconds.new)
        var nextQueueCheck = 0.0
        var job: SlurmClient.Job?
        var address: String?
        while monotonicSeconds() < deadline {
            if monotonicSeconds() >= nextQueueCheck {
                // Slurm's controller answers every person: asked twice a second at most.
                guard let current = try client.job(id), current.phase != .ending else { throw ServerFailure.jobLost(job: id, logTail: logTail()) }
                job = current
                nextQueueCheck = monotonicSeconds() + 0.5
                if current.phase == .waiting, monotonicSeconds() >= queueDeadline { return .queued(current) }
            }
            if let job, job.phase == .running {
                if address == nil { address = try client.address(ofNode: job.node) }
                if let address, let port = endpointPort(of: id) {
                    var serving = record
                    (serving.node, serving.address, serving.port) = (job.node, address, port)
                    if probe(serving, path: "api/status")?.status == 200 { return .serving(serving) }
                }
            }
            pauseThread(seconds: job?.phase == .running ? 0.05 : 0.25)
        }
        if let job, job.phase == .waiting { return .queued(job) }
        try? client.cancel([id], uid: uid)
        throw ServerFailure.startTimedOut(seconds: config.server.startTimeoutSeconds, logTail: logTail())
    }

    /// The port the job's server wrote, when the file names this job and the port is one of
    /// `port_range` (the person can write the file; only the port is taken from it, and the
    /// token probe then shows whether it is their server).
    func endpointPort(of job: String) -> Int? {
        guard case .file(let bytes)? = try? openJobDir().readEntry(Entry.endpoint, maxBytes: 256) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, fields[0] == job, let port = Int(fields[2]), settings.portRange.contains(port) else { return nil }
        return port
    }

    /// The job still runs on the recorded node, at the address Slurm gives for it, and its
    /// server answers the token there. The record is in a directory the person controls: none
    /// of it is taken on trust.
    func isServing(_ record: ServerRecord, in runtime: DirectoryHandle) -> Bool {
        guard let id = record.job, let port = record.port, settings.portRange.contains(port), let job = try? client.job(id),
              job.phase == .running, job.node == record.node, record.address == (try? client.address(ofNode: job.node)) else {
            return false
        }
        return probe(record, path: "api/status")?.status == 200
    }

    func isStarting(_ record: ServerRecord) -> Bool {
        guard let id = record.job, record.port == nil, let job = try? client.job(id) else { return false }
        return job.phase == .waiting || job.phase == .running
    }

    func isRunning(_ record: ServerRecord) -> Bool {
        guard let id = record.job, let job = try? client.job(id) else { return false }
        return job.phase == .running
    }

    /// The token goes only to the server that shows this start's certificate (over TLS): a
    /// record without a pin (one of an older hydra's jobs) is never trusted.
    func probe(_ record: ServerRecord, path: String) -> ServerSocket.Answer? {
        guard let address = record.address, let port = record.port, let pin = record.pin else { return nil }
        return ServerSocket.get(address: address, port: port, pin: pin, path: baseURL + path, host: "localhost", token: record.token,
                                timeoutSeconds: 5)
    }

    /// scancel for the recorded job and every other live job of this person with hydra's job
    /// name (one whose record was never written), then waits until squeue no longer lists them
    /// (a completing job's processes may still run).
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws {
        var ids = Set(try client.liveJobs(named: jobName, uid: uid).map(\.id))
        if let id = record?.job { ids.insert(id) }
        try client.cancel(ids.sorted(), uid: uid)
        let deadline = monotonicSeconds() + 15
        while monotonicSeconds() < deadline, try ids.contains(where: { try client.job($0) != nil }) { pauseThread(seconds: 0.2) }
        let jobDir = try openJobDir()
        for entry in [Entry.token, Entry.endpoint, Entry.key, Entry.certificate] { try jobDir.removeEntry(entry) }
    }

    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus {
        let job = record?.job.flatMap { try? client.job($0) }
        guard let record, let job, job.phase == .running, let answer = probe(record, path: "api/status"), answer.status == 200 else {
            return ServerStatus(user: identity.name.value, running: false, pid: nil, socket: nil, started: nil, lastActivity: nil,
                                kernels: nil, memoryBytes: nil, supervision: nil, limitEvents: nil, limitExplanation: nil,
                                job: job, summary: summary)
        }
        let info = try? JSONDecoder().decode(JupyterStatus.self, from: Data(answer.body.utf8))
        return ServerStatus(user: identity.name.value, running: true, pid: nil, socket: nil, started: info?.started,
                            lastActivity: info?.last_activity, kernels: info?.kernels, memoryBytes: nil, supervision: nil,
                            limitEvents: nil, limitExplanation: nil, job: job, address: record.address, port: record.port, summary: summary)
    }

    func logTail() -> String { ServerLog.tail(of: ["\(jobDir)/\(Entry.output)", logPath]) }
}
