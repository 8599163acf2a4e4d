import HydraSystem
import FoundationEssentials

/// What ipynb-launch remembers of the running server, in `<runtime dir>/server.json`, mode 0600
/// (the web server's group may list the directory, not read this file).
struct ServerRecord: Codable, Equatable {
    /// The local server's process (0 for a Slurm job).
    var pid: Int32
    var token: String
    var started: Double
    /// Slurm: the job, and once it serves, its node, the node's address and the server's port.
    var job: String? = nil
    var node: String? = nil
    var address: String? = nil
    var port: Int? = nil
    /// Slurm: the pin of the certificate made for this start (the job's server shows it over TLS).
    var pin: String? = nil
}
