import HydraSite
import HydraAccounts
import HydraSystem
import FoundationEssentials

/// A Slurm job's server: the job, and once it serves, its node, the node's address, the port and
/// the pin of the certificate made for this start (the job's server shows it over TLS).
package struct JobServer: Sendable, Equatable, Codable {
    package var job: String
    package var node: String? = nil
    package var address: String? = nil
    package var port: Int? = nil
    package var pin: String? = nil

    package init(job: String, node: String? = nil, address: String? = nil, port: Int? = nil, pin: String? = nil) {
        (self.job, self.node, self.address, self.port, self.pin) = (job, node, address, port, pin)
    }

    enum CodingKeys: String, CodingKey { case job, node, address, port, pin }

    /// A job id is Slurm's number: anything else (a record the person wrote) is not one, and
    /// never reaches squeue's or scancel's arguments.
    package init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        job = try keys.decode(String.self, forKey: .job)
        guard !job.isEmpty, job.count <= 20, job.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw DecodingError.dataCorruptedError(forKey: .job, in: keys, debugDescription: "a Slurm job id is a number")
        }
        node = try keys.decodeIfPresent(String.self, forKey: .node)
        address = try keys.decodeIfPresent(String.self, forKey: .address)
        port = try keys.decodeIfPresent(Int.self, forKey: .port)
        pin = try keys.decodeIfPresent(String.self, forKey: .pin)
    }

    /// Where hydra-gate may connect, once the job's server listens and its pin is well formed.
    package var endpoint: JobEndpoint? {
        guard let address, let port, let pin, JobEndpoint.isPin(pin) else { return nil }
        return JobEndpoint(job: job, address: address, port: port, pin: pin)
    }

    /// In words: "job 42 on node1 (10.0.0.5:21000)", or "job 42" while it has no endpoint.
    package var location: String {
        guard let node, let address, let port else { return "job \(job)" }
        return "job \(job) on \(node) (\(address):\(port))"
    }
}

/// Where a person's server runs: a process on this machine behind a Unix socket, or a Slurm job.
/// The one type ipynb-launch writes (its record, its `start --json` answer) and the front reads:
/// both sides decode what the other encodes with this type, so a renamed field breaks the build.
/// In JSON its fields sit beside the answer's others (`socket`, `pid`, `supervisor` or `job`,
/// `node`, `address`, `port`, `pin`), as they always have.
package enum ServerPlace: Sendable, Equatable, Codable {
    case local(socket: String, pid: Int32, supervisor: Supervision.Mode)
    case job(JobServer)

    enum CodingKeys: String, CodingKey { case socket, pid, supervisor }

    package init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        if let socket = try keys.decodeIfPresent(String.self, forKey: .socket) {
            self = .local(socket: socket, pid: try keys.decode(Int32.self, forKey: .pid),
                          supervisor: try keys.decode(Supervision.Mode.self, forKey: .supervisor))
        } else {
            self = .job(try JobServer(from: decoder))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        switch self {
        case .local(let socket, let pid, let supervisor):
            var keys = encoder.container(keyedBy: CodingKeys.self)
            try keys.encode(socket, forKey: .socket)
            try keys.encode(pid, forKey: .pid)
            try keys.encode(supervisor, forKey: .supervisor)
        case .job(let job):
            try job.encode(to: encoder)
        }
    }

    package var location: String {
        switch self {
        case .local(let socket, _, _): socket
        case .job(let job): job.location
        }
    }
}

/// What ipynb-launch remembers of the server it started, in `<runtime dir>/server.json`, mode
/// 0600 (the web server's group may list the directory, not read this file). The person can
/// write it: the lifecycle (ServerLifecycle) trusts none of it without checking.
struct ServerRecord: Codable, Equatable {
    /// The local server's process, or the job.
    enum Started: Equatable {
        case process(Int32)
        case job(JobServer)
    }

    var started: Started
    var token: String
    /// Seconds since 1970.
    var startedAt: Double
    /// The profile it runs (a record of a hydra before profiles names none: the implicit one).
    var profile: String

    // The file's keys since hydra's first version: a record written before an upgrade still reads.
    enum CodingKeys: String, CodingKey { case pid, token, started, job, profile }

    init(_ started: Started, token: String, startedAt: Double = Date().timeIntervalSince1970, profile: String = Profile.implicitName) {
        (self.started, self.token, self.startedAt, self.profile) = (started, token, startedAt, profile)
    }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: CodingKeys.self)
        token = try keys.decode(String.self, forKey: .token)
        startedAt = try keys.decode(Double.self, forKey: .started)
        profile = try keys.decodeIfPresent(String.self, forKey: .profile) ?? Profile.implicitName
        if keys.contains(.job) {
            started = .job(try JobServer(from: decoder))
        } else {
            started = .process(try keys.decode(Int32.self, forKey: .pid))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var keys = encoder.container(keyedBy: CodingKeys.self)
        try keys.encode(token, forKey: .token)
        try keys.encode(startedAt, forKey: .started)
        try keys.encode(profile, forKey: .profile)
        switch started {
        case .process(let pid): try keys.encode(pid, forKey: .pid)
        case .job(let job): try job.encode(to: encoder)
        }
    }

    var pid: Int32? { if case .process(let pid) = started { pid } else { nil } }
    var job: JobServer? { if case .job(let job) = started { job } else { nil } }
}
