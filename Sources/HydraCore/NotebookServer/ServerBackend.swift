import HydraSystem

/// Where a person's notebook server runs, and how it is started, checked and ended.
/// `ServerManager` calls it under the person's lock, and keeps what every backend shares: the
/// home, the courses, the record in the runtime directory and the front's login token.
protocol ServerBackend: Sendable {
    /// Where the record's server is (or would be), as `start --json` and `status` report it.
    func place(of record: ServerRecord?) -> ServerPlace

    /// Starts a server that accepts `token`; returns at once with its record, before it answers.
    func launch(token: String, in runtime: DirectoryHandle) throws -> ServerRecord
    /// Returns once the server answers an authenticated request, with the record completed by
    /// what only the running server knows (a job's node and port), or once it is clear that it
    /// waits for a place (a queued job); throws why it never will. `resumed`: a later visit
    /// looking in on a server an earlier one started.
    func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait
    /// The record's server is this person's own, and it answers.
    func isServing(_ record: ServerRecord, in runtime: DirectoryHandle) -> Bool
    /// The record's server was started and is not serving yet, but will be: a job waiting in
    /// the queue. A later visit waits for it rather than starting another.
    func isStarting(_ record: ServerRecord) -> Bool
    /// The record's server still runs (answering or not).
    func isRunning(_ record: ServerRecord) -> Bool
    /// Ends every server of this person the backend started, including a half-started one
    /// whose record was never written.
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws
    /// What `ipynb-launch status` reports.
    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus
}

/// How a wait for a server ended.
enum ServerWait: Equatable {
    case serving(ServerRecord)
    /// A Slurm job still queued: its state, reason and Slurm's expected start.
    case queued(SlurmClient.Job)
}

/// Where a server runs: a Unix socket on this machine (local), or a job's node and port (Slurm).
package struct ServerPlace: Sendable, Equatable {
    package var socket: String?
    package var pid: Int32?
    package var supervisor: Supervision.Mode?
    package var job: String?
    package var node: String?
    package var address: String?
    package var port: Int?
    /// The pin of the job's TLS certificate (SHA-256 of its DER, hex).
    package var pin: String?
    /// How servers run, in words ("systemd user units with ...", "Slurm jobs in partition ...").
    package var summary: String
}
