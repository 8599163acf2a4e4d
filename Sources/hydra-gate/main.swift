// hydra-gate: between Apache and every notebook server (per-person limits, timeouts, the one
// safe connect). The logic is HydraGate; this file only parses the command line.
import HydraSite
import ArgumentParser
import HydraGate
import HydraSystem
import HydraVersion

struct HydraGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hydra-gate",
        abstract: "hydra's gate: Apache's one way to the people's notebook servers.",
        discussion: """
            Apache proxies every /user/NAME/... request to this daemon's socket \
            (<server.runtime_dir>/.gate/gate.sock), one connection per request or websocket. The \
            gate admits it within [gate]'s limits per person and for the site (429 or 503 with \
            Retry-After otherwise), connects only to NAME's own server (a Slurm job's over TLS, on connections it keeps for \
            NAME's next GETs), sends a browser whose \
            server is not running back to the front, and ends answers that do not come in time. \
            Runs as the web server's user: as hydra-gate.service under systemd, else started by \
            scripts/install-site. Logs go to stderr. Configuration: \(HydraConfig.defaultPath).

            Exit status:
            \(ExitStatus.helpTable([.done, .usage, .systemError, .configurationError]))
            """,
        version: HydraBuild.version)

    @Option(name: .long, help: ArgumentHelp("Listen on this socket instead (for tests).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: "Event-loop threads (the gate holds no thread per connection).")
    var threads: Int = 2

    @Option(name: .long, help: ArgumentHelp("Another configuration file (for tests).", valueName: "path"))
    var config: String?

    func run() throws {
        let logger = HelperRun.bootstrapLogging(label: "hydra.gate")
        throw ExitCode(GateMain.run(configPath: config, socket: socket, threads: max(1, threads), logger: logger).rawValue)
    }
}

HydraGateCommand.main()
