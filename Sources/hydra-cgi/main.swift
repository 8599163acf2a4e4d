// hydra-cgi: the FastCGI front Apache runs (mod_fcgid, or mod_proxy_fcgi with --socket).
// The logic is HydraFront; this file only parses the command line.
import HydraSite
import ArgumentParser
import HydraFront
import HydraSystem
import HydraVersion

struct HydraCGI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hydra-cgi",
        abstract: "hydra's FastCGI front: from the site URL to the user's own JupyterLab.",
        discussion: """
            Started by mod_fcgid (the listening socket is stdin), by mod_cgi (plain CGI: one \
            request from the environment), or as a daemon for mod_proxy_fcgi with --socket. \
            Logs go to stderr, which Apache writes to its error log. Configuration: \
            \(HydraConfig.defaultPath).

            Exit status:
            \(ExitStatus.helpTable([.done, .usage, .systemError, .configurationError]))
            """,
        version: HydraBuild.version)

    @Option(name: .long, help: ArgumentHelp("Listen on this Unix socket (for mod_proxy_fcgi).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: "Worker threads answering requests at once (with --socket; mod_fcgid sends one request at a time to each process, so it gets one).")
    var workers: Int = 16

    @Option(name: .long, help: ArgumentHelp("Another configuration file (for tests).", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Fetch the course mirrors that are older than sync.fetch_interval_seconds, then exit (run as the web server's user, e.g. from cron).")
    var refreshMirrors = false

    func run() throws {
        let logger = HelperRun.bootstrapLogging(label: "hydra.cgi")
        let status = refreshMirrors
            ? FrontMain.refreshMirrors(configPath: config, logger: logger)
            : FrontMain.run(socket: socket, workers: socket == nil ? 1 : workers, configPath: config, logger: logger)
        throw ExitCode(status.rawValue)
    }
}

HydraCGI.main()
