import HydraSite
import HydraAccounts
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
    var baseURL: String { identity.name.serverPath }
    var uid: UInt32 { identity.account.uid }
    /// Every job hydra submits for this person has this name, so a job whose record was never
    /// written is still found and cancelled.
    var jobName: String { Self.jobName(for: identity.name.value) }
    /// The name of a person's server's job: how hydra-gate tells hydra's jobs from the person's own.
    package static func jobName(for person: String) -> String { "hydra-\(person)" }
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

    func place(of record: ServerRecord) -> ServerPlace {
        .job(record.job ?? JobServer(job: "?"))
    }

    /// What Slurm says of the recorded job, then whether its server answers where the record
    /// says: asked only of a running job whose recorded node and address are Slurm's.
    func observe(_ record: ServerRecord?, in runtime: DirectoryHandle, patience: Double) -> ServerLifecycle.Sighting {
        guard let record else { return .noRecord }
        guard let recorded = record.job else { return .otherBackend }
        let job = try? client.job(recorded.job)
        let endpoint: ServerLifecycle.JobFacts.Endpoint
        if recorded.port == nil, recorded.node == nil, recorded.address == nil {
            endpoint = .notYet
        } else if let job, job.phase == .running, job.node == recorded.node, recorded.address == (try? client.address(ofNode: job.node)) {
            endpoint = .matchesSlurm
        } else {
            endpoint = .elsewhere
        }
        let portAllowed = recorded.port.map(settings.portRange.contains) ?? false
        let pinned = recorded.pin.map(JobEndpoint.isPin) ?? false
        // Asked again while it does not answer, without asking Slurm again: squeue said it runs.
        let answers = endpoint == .matchesSlurm && portAllowed && pinned && answersPatiently(for: patience) {
            probe(recorded, token: record.token, path: "api/status")?.status == 200
        }
        return .job(.init(phase: job?.phase, endpoint: endpoint, portAllowed: portAllowed, pinned: pinned, answers: answers))
    }

    var summary: String { settings.summary }

    var command: ServerCommand { ServerCommand(config: config, identity: identity) }

    /// Exactly what the job gets (sbatch adds Slurm's own SLURM_* variables).
    var environment: [String: String] {
        command.environment(adding: [
            "HYDRA_PORT_RANGE": "\(settings.portRange.lowerBound) \(settings.portRange.upperBound)",
            "HYDRA_TOKEN_FILE": "\(jobDir)/\(Entry.token)", "HYDRA_ENDPOINT_FILE": "\(jobDir)/\(Entry.endpoint)", "HYDRA_LOG": logPath,
            "HYDRA_TLS_KEY": "\(jobDir)/\(Entry.key)", "HYDRA_TLS_CERT": "\(jobDir)/\(Entry.certificate)",
        ])
    }

    func openJobDir() throws -> DirectoryHandle {
        try DirectoryHandle.open(home.hydraDir).subdirectory("slurm", createMode: 0o700)
    }

    func launch(token: String, because reason: ServerLifecycle.LaunchReason, in runtime: DirectoryHandle) throws -> ServerRecord {
        let jobDir = try openJobDir()
        try jobDir.removeEntry(Entry.endpoint)
        ServerLog.rotate(logPath, maxBytes: config.server.logMaxBytes)
        try? FileSystem.append("hydra: submitting the server's job at \(Date()) (\(reason.rawValue))\n", to: logPath)
        try jobDir.writeAtomically(Entry.token, Array(token.utf8), staging: jobDir, mode: 0o600)
        // Requests and the token cross the cluster's network: TLS, with a certificate made here
        // for this start only and pinned by ipynb-launch's probe and by hydra-gate.
        let certificate = try PinnedCertificate.make(commonName: jobName)
        try jobDir.writeAtomically(Entry.key, certificate.keyPEM, staging: jobDir, mode: 0o600)
        try jobDir.writeAtomically(Entry.certificate, certificate.certificatePEM, staging: jobDir, mode: 0o600)
        try jobDir.writeAtomically(Entry.script, Array(Self.jobScript.utf8), staging: jobDir, mode: 0o700)
        let job = try client.submit(jobName: jobName, outputPath: "\(self.jobDir)/\(Entry.output)", workingDirectory: identity.account.home,
                                    script: "\(self.jobDir)/\(Entry.script)", arguments: command.arguments, environment: environment)
        return ServerRecord(.job(JobServer(job: job, pin: certificate.pin)), token: token)
    }

    /// How long a visit waits for a queued job before it reports that the job waits: a new job
    /// on a cluster with room starts within a second or two, so a first visit goes straight to
    /// the lab; a later visit (the starting page reloading) only looks in, holding no front
    /// worker for long.
    static let queuePatienceSeconds = (new: 10.0, resumed: 1.0)
    /// How often a start asks Slurm about its job while the job's server has not written its
    /// endpoint (as often as hydra-gate looks); once it has, Slurm is asked once more.
    static let jobLookSeconds = 3.0

    /// Looks at the job until it runs and its server answers the token at the node's address, or
    /// it is reported queued. A queued job keeps its place: the next visit looks in on the same job.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait {
        guard let recorded = record.job else { throw ServerFailure.jobLost(job: "?", logTail: logTail()) }
        let begun = monotonicSeconds()
        let patience = resumed ? Self.queuePatienceSeconds.resumed : Self.queuePatienceSeconds.new
        var lastQueueCheck = -Double.infinity
        var job: SlurmClient.Job?
        // Where it serves comes from Slurm and the job's own endpoint file, never from the record.
        var serving = JobServer(job: recorded.job, pin: recorded.pin)
        while true {
            // The job's server writes its endpoint once it runs: until then Slurm is asked every
            // few seconds (is it queued, has it ended?), then once, for its node. Slurm's
            // controller answers every person on the cluster.
            let port = endpointPort(of: recorded.job)
            let sinceCheck = monotonicSeconds() - lastQueueCheck
            if sinceCheck >= Self.jobLookSeconds || (port != nil && job?.phase != .running && sinceCheck >= 0.5) {
                job = try client.job(recorded.job)
                lastQueueCheck = monotonicSeconds()
            }
            var answers = false
            if let job, job.phase == .running {
                if serving.address == nil { serving.address = try client.address(ofNode: job.node) }
                if serving.address != nil, let port {
                    (serving.node, serving.port) = (job.node, port)
                    answers = probe(serving, token: record.token, path: "api/status")?.status == 200
                }
            }
            let look = ServerLifecycle.Look(elapsed: monotonicSeconds() - begun, timeout: Double(config.server.startTimeoutSeconds),
                                            server: .job(phase: job?.phase, queuePatience: patience, answers: answers))
            switch ServerLifecycle.nextStep(look) {
            case .serving:
                var served = record
                served.started = .job(serving)
                return .serving(served)
            case .queued:
                guard let job else { throw ServerFailure.jobLost(job: recorded.job, logTail: logTail()) }
                return .queued(job)
            case .lookAgain(let seconds):
                pauseThread(seconds: seconds)
            case .timedOut:
                try? client.cancel([recorded.job], uid: uid)
                throw ServerFailure.startTimedOut(seconds: config.server.startTimeoutSeconds, logTail: logTail())
            case .jobLost, .exited:
                throw ServerFailure.jobLost(job: recorded.job, logTail: logTail())
            }
        }
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

    /// The token goes only to the server that shows this start's certificate (over TLS): a
    /// record without a pin (one of an older hydra's jobs) is never trusted.
    func probe(_ server: JobServer, token: String, path: String) -> ServerSocket.Answer? {
        guard let address = server.address, let port = server.port, let pin = server.pin else { return nil }
        return ServerSocket.get(address: address, port: port, pin: pin, path: baseURL + path, host: "localhost", token: token,
                                timeoutSeconds: 5)
    }

    /// scancel for the recorded job and every other live job of this person with hydra's job
    /// name (one whose record was never written), then waits until squeue no longer lists them
    /// (a completing job's processes may still run).
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws {
        var ids = Set(try client.liveJobs(named: jobName, uid: uid).map(\.id))
        if let id = record?.job?.job { ids.insert(id) }
        try client.cancel(ids.sorted(), uid: uid)
        let deadline = monotonicSeconds() + 15
        while monotonicSeconds() < deadline, try ids.contains(where: { try client.job($0) != nil }) { pauseThread(seconds: 0.2) }
        let jobDir = try openJobDir()
        for entry in [Entry.token, Entry.endpoint, Entry.key, Entry.certificate] { try jobDir.removeEntry(entry) }
    }

    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus {
        let recorded = record?.job
        let job = recorded.flatMap { try? client.job($0.job) }
        guard let record, let recorded, let job, job.phase == .running, let answer = probe(recorded, token: record.token, path: "api/status"),
              answer.status == 200 else {
            return ServerStatus(user: identity.name.value, running: false, summary: summary, activity: nil, server: .job(JobStatus(job: job)))
        }
        return ServerStatus(user: identity.name.value, running: true, summary: summary,
                            activity: try? JSONDecoder().decode(JupyterStatus.self, from: Data(answer.body.utf8)),
                            server: .job(JobStatus(job: job, address: recorded.address, port: recorded.port)))
    }

    func logTail() -> String { ServerLog.tail(of: ["\(jobDir)/\(Entry.output)", logPath]) }
}
