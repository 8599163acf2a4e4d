import HydraSystem
import FoundationEssentials

/// What ipynb-launch remembers of the running server, in `<runtime dir>/server.json`, mode 0600
/// (the web server's group may list the directory, not read this file).
struct ServerRecord: Codable, Equatable {
    var pid: Int32
    var token: String
    var started: Double
}
