// ipynb-launch: a hydra user's own helper, run as that user (sudo -u NAME from the front, or
// by the user over ssh). The logic is HydraKit; this file only parses the command line.
import ArgumentParser
import Foundation
import HydraKit

struct IpynbLaunch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipynb-launch",
        abstract: "Set up a hydra user's home and notebook server.",
        discussion: """
            Runs as the user, never as root. Configuration: \(HydraConfig.defaultPath) (root-owned).

            Exit status:
            \(ExitStatus.helpTable([.done, .alreadyFine, .usage, .invalidName, .internalError, .systemError, .temporaryFailure, .refused, .configurationError]))
            """,
        subcommands: [Check.self])
}

extension IpynbLaunch {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that this account may use hydra and that its runtime directory is ready.")

        @Flag(name: .long, help: "Print one JSON object.")
        var json = false

        func run() throws {
            let logger = HelperRun.bootstrapLogging(label: "hydra.ipynb-launch")
            let status = HelperRun.report(json: json, logger: logger, action: "ipynb-launch check", user: NSUserName()) {
                () throws in
                let config = try HydraConfig.load()
                let report = try LaunchCheck.run(config: config)
                return (report, report.ready ? .done : .temporaryFailure, report.summary)
            }
            throw ExitCode(status.rawValue)
        }
    }
}

IpynbLaunch.main()
