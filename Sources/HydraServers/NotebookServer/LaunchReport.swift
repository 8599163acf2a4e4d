import HydraAccounts
import HydraCourses
import HydraSystem
import FoundationEssentials

/// What `ipynb-launch start --json` prints, and what the front decodes: where the server is and
/// its token. One type on both sides (see ServerPlace).
package struct LaunchReport: Sendable, Equatable, Codable {
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

    package var user: String
    package var baseURL: String
    package var token: String
    package var outcome: Outcome
    /// The profile the server runs.
    package var profile: String
    package var place: ServerPlace
    /// Waiting: the queued job as squeue shows it (state, reason, expected start).
    package var queued: SlurmClient.Job?
    package var seconds: Double
    package var sync: [SyncReport]

    package init(user: String, baseURL: String, token: String, outcome: Outcome, profile: String, place: ServerPlace,
                 queued: SlurmClient.Job? = nil, seconds: Double, sync: [SyncReport]) {
        (self.user, self.baseURL, self.token, self.outcome, self.profile, self.place) = (user, baseURL, token, outcome, profile, place)
        (self.queued, self.seconds, self.sync) = (queued, seconds, sync)
    }

    /// What `ipynb-launch start` prints without --json.
    package var text: String {
        let syncText = sync.map(\.summary).joined(separator: "; ")
        let text = queued.map { "the server's Slurm job \($0.id) of \(user) is \($0.state) (\($0.reason)), expected start \($0.startTime); start again to follow it" }
            ?? "\(outcome) the server of \(user) (profile \(profile)) at \(place.location) in \(seconds) s"
        return text + (syncText.isEmpty ? "" : "; \(syncText)")
    }

    enum CodingKeys: String, CodingKey {
        case user, token, outcome, profile, queued, seconds, sync
        case baseURL = "base_url"
    }

    package init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        user = try keys.decode(String.self, forKey: .user)
        baseURL = try keys.decode(String.self, forKey: .baseURL)
        token = try keys.decode(String.self, forKey: .token)
        outcome = try keys.decode(Outcome.self, forKey: .outcome)
        profile = try keys.decode(String.self, forKey: .profile)
        place = try ServerPlace(from: decoder)
        queued = try keys.decodeIfPresent(SlurmClient.Job.self, forKey: .queued)
        seconds = try keys.decode(Double.self, forKey: .seconds)
        sync = try keys.decode([SyncReport].self, forKey: .sync)
    }

    package func encode(to encoder: any Encoder) throws {
        var keys = encoder.container(keyedBy: CodingKeys.self)
        try keys.encode(user, forKey: .user)
        try keys.encode(baseURL, forKey: .baseURL)
        try keys.encode(token, forKey: .token)
        try keys.encode(outcome, forKey: .outcome)
        try keys.encode(profile, forKey: .profile)
        try place.encode(to: encoder)
        try keys.encodeIfPresent(queued, forKey: .queued)
        try keys.encode(seconds, forKey: .seconds)
        try keys.encode(sync, forKey: .sync)
    }
}

/// What `status` prints (never the token). In JSON the server's own fields sit beside the rest.
package struct ServerStatus: Sendable, Encodable {
    package let user: String
    package let running: Bool
    /// The profile of the recorded server (running, queued or not), or nil without a record.
    package var profile: String? = nil
    /// How servers run, in words.
    package let summary: String
    /// What a running server's Jupyter says of itself.
    package let activity: JupyterStatus?
    package let server: Server

    package enum Server: Sendable, Encodable {
        case local(LocalServerStatus)
        case job(JobStatus)

        package func encode(to encoder: any Encoder) throws {
            switch self {
            case .local(let local): try local.encode(to: encoder)
            case .job(let job): try job.encode(to: encoder)
            }
        }
    }

    /// What `ipynb-launch status` prints without --json.
    package var text: String {
        let user = self.user + (profile.map { " (profile \($0))" } ?? "")
        let activityText = "\(activity?.kernels ?? 0) kernels, last activity \(activity?.lastActivity ?? "?")"
        switch server {
        case .local(let local):
            let state = running ? "running (PID \(local.pid ?? 0), \((local.memoryBytes ?? 0) >> 20) MiB, \(activityText))" : "not running"
            let events = local.limitEvents.map { "; since it started: \($0.summary)" } ?? ""
            return "\(user): \(state)\(events); servers run as \(summary)" + (local.limitExplanation.map { "\n\($0)" } ?? "")
        case .job(let status):
            let state = if running, let job = status.job, let address = status.address, let port = status.port {
                "running (job \(job.id) on \(job.node), \(address):\(port), \(activityText))"
            } else {
                status.job.map { "waiting: job \($0.id) is \($0.state) (\($0.reason)), expected start \($0.startTime)" } ?? "not running"
            }
            return "\(user): \(state); servers run as \(summary)"
        }
    }

    enum CodingKeys: String, CodingKey { case user, running, profile, summary }

    package func encode(to encoder: any Encoder) throws {
        var keys = encoder.container(keyedBy: CodingKeys.self)
        try keys.encode(user, forKey: .user)
        try keys.encode(running, forKey: .running)
        try keys.encodeIfPresent(profile, forKey: .profile)
        try keys.encode(summary, forKey: .summary)
        try activity?.encode(to: encoder)
        try server.encode(to: encoder)
    }
}

/// A local server's status: its socket always; the rest while it runs.
package struct LocalServerStatus: Sendable, Encodable {
    package let socket: String
    package var pid: Int32? = nil
    /// The server's memory with its kernels'.
    package var memoryBytes: Int? = nil
    /// How local servers run (systemd or detached) and with which limits.
    package let supervision: Supervision
    /// systemd mode: what the server's control group recorded (OOM kills, refused forks).
    package var limitEvents: LimitEvents? = nil
    /// Those events since the server started, in words for the person; nil when there were none.
    package var limitExplanation: String? = nil

    enum CodingKeys: String, CodingKey {
        case socket, pid, supervision
        case memoryBytes = "memory_bytes", limitEvents = "limit_events", limitExplanation = "limit_explanation"
    }
}

/// A Slurm job's status: the job as squeue shows it, and where its server listens once it serves.
package struct JobStatus: Sendable, Encodable {
    package let job: SlurmClient.Job?
    package var address: String? = nil
    package var port: Int? = nil
}

/// The fields of Jupyter's `api/status` that `ipynb-launch status` reports.
package struct JupyterStatus: Sendable, Codable {
    package let started: String?
    package let lastActivity: String?
    package let kernels: Int?

    enum CodingKeys: String, CodingKey { case started, kernels, lastActivity = "last_activity" }
}
