import HydraSystem

/// Where a person's notebook server runs, and how it is started, checked and ended.
/// `ServerManager` calls it under the person's lock, and keeps what every backend shares: the
/// home, the courses, the record in the runtime directory and the front's login token.
protocol ServerBackend: Sendable {
    /// How servers run, as `start --json` reports it.
    var supervisionMode: Supervision.Mode { get }
    /// Where the front and hydra-gate reach the server.
    var socketPath: String { get }

    /// Starts a server that accepts `token`; returns at once with its record, before it answers.
    func launch(token: String, in runtime: DirectoryHandle) throws -> ServerRecord
    /// Returns once the server answers an authenticated request, or throws why it never will.
    func waitUntilServing(_ record: ServerRecord, in runtime: DirectoryHandle) throws
    /// The record's server is this person's own, and it answers.
    func isServing(_ record: ServerRecord, in runtime: DirectoryHandle) -> Bool
    /// The record's server still runs (answering or not).
    func isRunning(_ record: ServerRecord) -> Bool
    /// Ends every server of this person the backend started, including a half-started one
    /// whose record was never written.
    func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws
    /// What `ipynb-launch status` reports.
    func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus
}
