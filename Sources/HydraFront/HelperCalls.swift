import HydraSite
import HydraServers
import HydraSystem
import HydraFastCGI
import FoundationEssentials

/// What the front asks of the privileged helpers: HelperCalls runs them; a test stands in with
/// HydraTesting's `FakeHelpers`.
package protocol HelperRunning: Sendable {
    /// `addldapuser --json -- NAME`, as root.
    func addLDAPUser(_ name: UserName) throws -> HelperCalls.Outcome
    /// `ipynb-launch start --json --lock-timeout 0 [--profile NAME]`, as the person.
    func startServer(_ name: UserName, profile: String?) throws -> HelperCalls.Outcome
    /// `ipynb-launch stop --json`, as the person (an admin's Stop button).
    func stopServer(_ name: UserName) throws -> HelperCalls.Outcome
    /// `ipynb-launch sync --json`, as the person: the courses alone (after a visit to a Slurm job,
    /// where a start would ask Slurm).
    func syncCourses(_ name: UserName) throws -> HelperCalls.Outcome
}

/// How the front runs the privileged helpers: `sudo -n` with an argument vector, the minimal
/// environment, no inherited descriptors and a timeout. Their JSON answer is decoded here.
package struct HelperCalls: HelperRunning {
    /// The folder holding addldapuser and ipynb-launch: the front's own (sudoers names them there).
    package let directory: String
    package let config: HydraConfig

    package init(config: HydraConfig, directory: String = HelperCalls.ownDirectory()) {
        self.config = config
        self.directory = directory
    }

    package static func ownDirectory() -> String {
        let executable = FileSystem.linkTarget("/proc/self/exe") ?? "/usr/lib/hydra/hydra-cgi"
        return FileSystem.split(executable).folder
    }

    package struct Outcome: Sendable {
        package let status: Int32
        package let output: [UInt8]
        package let stderr: String
        package let timedOut: Bool
        /// The front is exiting and stopped waiting; the helper goes on.
        package let abandoned: Bool
        package let seconds: Double
        package var exitStatus: ExitStatus? { ExitStatus(rawValue: status) }

        package init(status: Int32, output: [UInt8], stderr: String = "", timedOut: Bool = false, abandoned: Bool = false, seconds: Double = 0) {
            (self.status, self.output, self.stderr, self.timedOut, self.abandoned, self.seconds) = (status, output, stderr, timedOut, abandoned, seconds)
        }

        /// The helper's JSON answer as `T`, or nil.
        package func decode<T: Decodable>(_ type: T.Type) -> T? {
            try? JSONDecoder().decode(T.self, from: Data(output))
        }

        /// The helper's own error message (from its JSON), else the end of its stderr.
        package var message: String {
            if timedOut { return "timed out after \(Int(seconds)) s" }
            return decode(HelperRun.ErrorReport.self)?.error ?? stderr.split(separator: "\n").suffix(3).joined(separator: " | ")
        }
    }

    package func addLDAPUser(_ name: UserName) throws -> Outcome {
        try sudo(["\(directory)/addldapuser", "--json", "--", name.value],
                 timeout: Double(config.ldap.timeoutSeconds) * 3 + 10)
    }

    package func startServer(_ name: UserName, profile: String?) throws -> Outcome {
        let timeout = Double(config.server.startTimeoutSeconds + config.sync.fetchTimeoutSeconds * max(1, config.courses.count) + 15)
        // A start outlives a restart of the front, and a visit that waited as long as Apache lets
        // it: the visit gets the "starting" page, which reloads, meanwhile.
        let giveUp = monotonicSeconds() + Self.longestVisitWaitSeconds
        // A person can hold their own lock (their runtime directory is theirs): no wait for it,
        // exit 3 instead, so the visit's start slot goes to the next person at once.
        let choice = profile.map { ["--profile", $0] } ?? []
        return try sudo(["-u", name.value, "\(directory)/ipynb-launch", "start", "--json",
                         "--lock-timeout", "\(ServerManager.frontLockPatienceSeconds)"] + choice, timeout: timeout,
                        abandonWhen: { FastCGI.isStopping || monotonicSeconds() > giveUp })
    }

    package func stopServer(_ name: UserName) throws -> Outcome {
        try sudo(["-u", name.value, "\(directory)/ipynb-launch", "stop", "--json"], timeout: Double(config.server.startTimeoutSeconds))
    }

    package func syncCourses(_ name: UserName) throws -> Outcome {
        try sudo(["-u", name.value, "\(directory)/ipynb-launch", "sync", "--json"],
                 timeout: Double(config.sync.fetchTimeoutSeconds * max(1, config.courses.count) + 15))
    }

    /// How long a visit waits for a start before it answers the page that reloads itself: a
    /// browser shows a blank page for not much longer, and Apache's ProxyTimeout is far above it.
    package static let longestVisitWaitSeconds = 75.0

    private func sudo(_ arguments: [String], timeout: Double, abandonWhen: (@Sendable () -> Bool)? = nil) throws -> Outcome {
        var options = ProcessRunner.Options()
        options.timeoutSeconds = timeout
        options.abandonWhen = abandonWhen
        let started = monotonicSeconds()
        let result = try ProcessRunner.run("/usr/bin/sudo", ["-n"] + arguments, options: options)
        return Outcome(status: result.status, output: result.standardOutput, stderr: result.errorText,
                       timedOut: result.timedOut, abandoned: result.abandoned, seconds: monotonicSeconds() - started)
    }
}
