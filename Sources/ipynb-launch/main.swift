// ipynb-launch: a hydra user's own helper, run as that user (sudo -u NAME from the front, or
// by the user over ssh). The logic is HydraServers; this file only parses the command line.
import HydraSite
import HydraAccounts
import HydraCourses
import HydraServers
import ArgumentParser
import FoundationEssentials
import HydraSystem
import HydraVersion

struct IpynbLaunch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipynb-launch",
        abstract: "Set up a hydra user's home, sync the course notebooks, start or reuse the notebook server.",
        discussion: """
            Runs as the user, never as root, and only for members of the hydra group. \
            Configuration: \(HydraConfig.defaultPath) (root-owned). The server listens on \
            <server.runtime_dir>/NAME/jupyter.sock and is reached through the site at /user/NAME/. \
            With server.backend = "slurm" the server is a Slurm job of yours instead (hydra-NAME), \
            listening on TCP on its node; its files are in ~/.hydra/slurm/.

            Exit status:
            \(ExitStatus.helpTable([.done, .alreadyFine, .waiting, .busy, .usage, .invalidName, .internalError, .systemError, .homeFull, .temporaryFailure, .refused, .configurationError]))
            """,
        version: HydraBuild.version,
        subcommands: [Start.self, Sync.self, Status.self, Stop.self, Check.self, Unit.self])
}

/// Options and the common run of every subcommand.
struct Common: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run<Report: Encodable>(_ action: String, _ work: (HydraConfig, LaunchIdentity) throws -> (Report, ExitStatus, String)) throws -> Never {
        let logger = HelperRun.bootstrapLogging(label: "hydra.ipynb-launch")
        let status = HelperRun.report(json: json, logger: logger, action: "ipynb-launch \(action)", user: UserDatabase.user(uid: ProcessControl.realUserID)?.name ?? "UID \(ProcessControl.realUserID)") {
            let config = try HydraConfig.load()
            return try work(config, try LaunchIdentity.current(config: config))
        }
        throw ExitCode(status.rawValue)
    }
}

extension IpynbLaunch {
    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prepare the home, sync the courses, and reuse the running server or start one (exit 1: reused, 0: started).",
            discussion: """
                With --json (for hydra-cgi) the object carries the server's token: keep it out of logs. \
                With the Slurm backend, start submits the job and waits up to server.start_timeout_seconds \
                for its server. A job still queued after 10 s (1 s when an earlier start submitted it) \
                keeps its place: exit 2 with its state, reason and expected start, and the next start \
                looks in on the same job. While another start, stop or sync of your server runs \
                (it holds <server.runtime_dir>/NAME/lock), start waits for it: by default as long as a \
                start may take, with --lock-timeout at most that many seconds; then exit 3 (busy), \
                with nothing done.
                """)
        @OptionGroup var common: Common
        @Option(help: "Wait at most this many seconds for another start, stop or sync of your server (hydra-cgi: \(ServerManager.frontLockPatienceSeconds)).")
        var lockTimeout: Int?
        @Option(help: ArgumentHelp("Run the server with this profile of hydra.toml's [[profiles]] (one your groups allow; exit 77 "
                                   + "otherwise). A server of another profile is stopped first. Without it: the running server's "
                                   + "profile, else the default."))
        var profile: String?

        func validate() throws {
            if let lockTimeout, !(0...3600).contains(lockTimeout) { throw ValidationError("--lock-timeout takes 0 to 3600 seconds") }
            if let profile, !Profile.isValidName(profile) { throw ValidationError("--profile takes a profile's name: 1 to 32 of a-z, 0-9 and '-'") }
        }

        func run() throws {
            try common.run("start") { config, identity in
                let report = try ServerManager(config: config, identity: identity).start(lockTimeoutSeconds: lockTimeout, profile: profile)
                return (report, report.outcome.exitStatus, report.text)
            }
        }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sync the configured courses, or one repository into one folder of your home.",
            discussion: """
                Files you changed are never overwritten: when the course changes them too, its version \
                arrives beside yours as NAME.upstream.EXT. Exit 75 when a repository could not be fetched.
                """)
        @OptionGroup var common: Common
        @Option(help: "A repository to sync instead of the configured courses (URL or path).")
        var repo: String?
        @Option(help: "Its branch.")
        var branch = "main"
        @Option(help: "The folder in your home to sync it into.")
        var dir: String?

        func validate() throws {
            guard (repo == nil) == (dir == nil) else { throw ValidationError("--repo and --dir go together") }
            if let dir, !HydraConfig.isPlainRelativePath(dir) { throw ValidationError("--dir must be a folder inside your home, without '..'") }
            if let repo, repo.hasPrefix("-") { throw ValidationError("--repo must be a URL or a path") }
            if !HydraConfig.isValidBranch(branch) { throw ValidationError("--branch is not a valid branch name") }
        }

        func run() throws {
            try common.run("sync") { config, identity in
                let home = HomeSetup(config: config, account: identity.account)
                let reports: [SyncReport]
                if let repo, let dir {
                    reports = [home.sync(folder: dir, source: .init(url: repo, branch: branch))]
                } else {
                    reports = home.syncCourses()
                }
                let failed = reports.contains { $0.error != nil }
                return (reports, failed ? .temporaryFailure : .done, reports.map(\.summary).joined(separator: "; "))
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show whether your notebook server runs, its memory and last activity.")
        @OptionGroup var common: Common

        func run() throws {
            try common.run("status") { config, identity in
                let status = try ServerManager(config: config, identity: identity).status()
                return (status, .done, status.text)
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop your notebook server (SIGTERM, then SIGKILL after 10 s; with the Slurm backend, scancel of its job).")
        @OptionGroup var common: Common

        func run() throws {
            try common.run("stop") { config, identity in
                let stopped = try ServerManager(config: config, identity: identity).stop()
                return (["user": identity.name.value, "stopped": stopped ? "yes" : "no"], .done,
                        stopped ? "stopped the server of \(identity.name)" : "no server was running")
            }
        }
    }

    struct Unit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the systemd unit your server runs as where systemd is PID 1, with your profile's limits.",
            discussion: """
                hydra starts it with systemd-run --user; this prints the same settings as a unit file, which \
                systemd-analyze verify --user can check. Where systemd is not PID 1 the server runs detached \
                with setrlimit limits instead (see status).
                """)
        @OptionGroup var common: Common

        func run() throws {
            try common.run("unit") { config, identity in
                let unit = LocalBackend(config: ServerManager(config: config, identity: identity).currentProfileConfig, identity: identity).unit()
                let report: [String: String] = ["name": unit.name, "unit_file": unit.unitFile]
                return (report, .done, unit.unitFile)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that this account may use hydra and that its runtime directory is ready.",
            discussion: """
                With a [slurm] table in the configuration, also ask Slurm, as you: the partition and its \
                nodes (sinfo), and whether it would accept your server's job with the [slurm] settings \
                (sbatch --test-only; nothing is submitted).
                """)
        @OptionGroup var common: Common

        func run() throws {
            try common.run("check") { config, identity in
                let report = LaunchCheck(config: ServerManager(config: config, identity: identity).currentProfileConfig, identity: identity)
                return (report, report.exitStatus, report.summary)
            }
        }
    }
}

IpynbLaunch.main()
