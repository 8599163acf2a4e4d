// addldapuser: makes a Unix account ready for hydra. Runs as root, through sudo, from the front.
// The logic is HydraAccounts/Accounts; this file only parses the command line.
import HydraSite
import HydraAccounts
import ArgumentParser
import FoundationEssentials
import HydraSystem
import HydraVersion

struct AddLDAPUser: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "addldapuser",
        abstract: "Create or check the Unix account of a hydra user, from its LDAP entry.",
        discussion: """
            Validates NAME, refuses system and privileged accounts, and then either checks an \
            existing account (and adds it to the hydra group) or creates it with the UID and display \
            name from LDAP. With no LDAP entry, a local UID is used only when the directory answered \
            "no such entry" and accounts.local_uid_fallback is on. Finally prepares the runtime \
            directory <server.runtime_dir>/NAME (owner NAME, group of the web server, mode 2750). \
            Where the servers are systemd units, it also enables lingering and sets the ceiling on \
            the person's user-UID.slice (MemoryMax, CPUQuota, TasksMax) to the most their profiles \
            allow, recorded in /var/lib/hydra/ceilings/NAME.

            Configuration: \(HydraConfig.defaultPath) only (root-owned); --config is refused under sudo.

            Exit status:
            \(ExitStatus.helpTable([.done, .alreadyFine, .usage, .invalidName, .ldapUnavailable, .internalError, .systemError, .ldapEntryUnusable, .refused, .configurationError]))
            """,
        version: HydraBuild.version)

    @Flag(name: .long, help: "Say what would be done; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print one JSON object (for hydra-cgi).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Another configuration file (refused under sudo).", valueName: "path"))
    var config: String?

    @Argument(help: "The user name (as Apache authenticated it, realm already stripped).")
    var name: String

    func run() throws {
        let logger = HelperRun.bootstrapLogging(label: "hydra.addldapuser")
        let status = HelperRun.report(json: json, logger: logger, action: dryRun ? "addldapuser --dry-run" : "addldapuser", user: name) {
            () throws in
            guard ProcessControl.realUserID == 0 && ProcessControl.effectiveUserID == 0 || dryRun else {
                throw StepFailure("addldapuser must run as root (through sudo from the front)", status: .refused)
            }
            let path = try HydraConfig.path(option: config, environment: ProcessInfo.processInfo.environment)
            HelperRun.ignoreCallerContext()
            let report = try AccountProvisioner(config: try HydraConfig.load(path: path), dryRun: dryRun).provision(name)
            let verb = dryRun ? "would be" : "is"
            let summary = report.actions.isEmpty
                ? "\(report.user) (UID \(report.uid)) \(verb) already fine"
                : "\(report.user) (UID \(report.uid)): " + report.actions.joined(separator: "; ")
            return (report, report.exitStatus, summary)
        }
        throw ExitCode(status.rawValue)
    }
}

AddLDAPUser.main()
