// hydra-cgi: the FastCGI front, a daemon Apache reaches through mod_proxy_fcgi (--socket).
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
            Runs as a daemon with --socket, which Apache's mod_proxy_fcgi reaches \
            (hydra-cgi.service; without systemd, /usr/lib/hydra/hydra-detached front): it reads \
            \(HydraConfig.defaultPath) again at the first request after the file changed, and \
            answers "hydra is not available" while the file does not load. Without --socket it \
            answers the one request of a CGI run, or FastCGI on stdin as mod_fcgid starts it. \
            Logs go to stderr: the unit's journal, /var/log/hydra/front.log, or Apache's error log.

            Exit status:
            \(ExitStatus.helpTable([.done, .usage, .systemError, .configurationError]))
            """,
        version: HydraBuild.version)

    @Option(name: .long, help: ArgumentHelp("Listen on this Unix socket (for mod_proxy_fcgi).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: "Worker threads answering requests at once (with --socket; more wait in the socket's queue). A first visit holds one while the person's server starts, at most server.max_concurrent_starts of them.")
    var workers: Int = 64

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
