import HydraSite
import HydraSystem
import FoundationEssentials

/// How a user's notebook server runs, decided from `limits.supervisor` and the machine:
/// - systemd: a transient unit of the user's own systemd manager (`systemd-run --user`), so the
///   server lives outside Apache's control group and private /tmp (a restart of apache2 does
///   not kill it) with MemoryMax, CPUQuota and TasksMax;
/// - detached: its own session (setsid) with setrlimit limits, where systemd is not PID 1.
package struct Supervision: Sendable, Encodable {
    package enum Mode: String, Sendable, Codable { case systemd, detached }

    package let mode: Mode
    /// Why this mode, in words for the admin.
    package let reason: String
    package let limits: ResourceLimits

    package init(config: HydraConfig, name: UserName, systemdRunning: Bool = Supervision.systemdIsRunning) {
        self.init(config: config, limits: config.limits.limits(for: name), systemdRunning: systemdRunning)
    }

    /// With the site's limits: what the front and addldapuser need to know.
    package init(config: HydraConfig, limits: ResourceLimits? = nil, systemdRunning: Bool = Supervision.systemdIsRunning) {
        (mode, reason) = Self.decide(config.limits.supervisor, systemdRunning: systemdRunning)
        self.limits = limits ?? config.limits.defaults
    }

    /// systemd's own test (sd_booted): this directory exists only when systemd is PID 1.
    package static var systemdIsRunning: Bool { FileSystem.exists("/run/systemd/system") }

    static func decide(_ setting: Supervisor, systemdRunning: Bool) -> (Mode, String) {
        switch setting {
        case .systemd: (.systemd, "limits.supervisor is \"systemd\"")
        case .detached: (.detached, "limits.supervisor is \"detached\"")
        case .auto: systemdRunning ? (.systemd, "systemd is PID 1") : (.detached, "systemd is not PID 1 on this machine")
        }
    }

    /// A refusal when systemd is asked for but is not there: a site setting to fix, not a retry.
    package func requireAvailable(systemdRunning: Bool = Supervision.systemdIsRunning) throws {
        guard mode == .systemd, !systemdRunning else { return }
        throw StepFailure("limits.supervisor is \"systemd\", but systemd is not PID 1 on this machine; set it to \"auto\" or \"detached\"",
                          status: .configurationError)
    }

    /// One line for logs and `status`: the mode, why, and the limits as applied.
    package var summary: String {
        switch mode {
        case .systemd:
            let applied = SystemdUnit.limitProperties(limits).map { "\($0.0)=\($0.1)" }
            return "systemd user units (\(reason)); limits: \(applied.isEmpty ? "none" : applied.joined(separator: " "))"
        case .detached:
            var applied: [String] = []
            if let memory = limits.memoryMaxBytes { applied.append("data segment \(ResourceLimits.mebibytes(memory)) per process (RLIMIT_DATA)") }
            if let tasks = limits.tasksMax { applied.append("\(tasks) processes and threads for the account (RLIMIT_NPROC)") }
            let cpu = limits.cpuQuotaPercent == nil ? "" : "; cpu_quota needs systemd and is not applied"
            return "detached processes (\(reason)); limits: \(applied.isEmpty ? "none" : applied.joined(separator: ", "))\(cpu)"
        }
    }

    /// The limits setrlimit can give a detached server, applied to the calling process so that
    /// the server it is about to start inherits them. Soft and hard alike: the user cannot raise them.
    package func applyProcessLimits() throws {
        if let memory = limits.memoryMaxBytes { try Self.setLimit(.dataBytes, memory, "limits.memory_max") }
        if let tasks = limits.tasksMax { try Self.setLimit(.processes, UInt64(tasks), "limits.tasks_max") }
    }

    private static func setLimit(_ limit: ProcessControl.Limit, _ value: UInt64, _ key: String) throws {
        do {
            try ProcessControl.setLimit(limit, to: value)
        } catch {
            throw StepFailure("cannot apply \(key) = \(value) with setrlimit: \(error.code)", status: .systemError)
        }
    }

    /// Where the user's systemd manager listens, once lingering has started it.
    package static func userManagerBus(uid: UInt32) -> String { "/run/user/\(uid)/bus" }
    /// The file `loginctl enable-linger NAME` creates: the user's manager runs from boot on.
    package static func lingerFile(_ name: UserName) -> String { "/var/lib/systemd/linger/\(name.value)" }
}

/// The transient unit a user's server runs as under systemd. Its properties are built once and
/// used both for `systemd-run` and for the equivalent unit file (`ipynb-launch unit`), which
/// `systemd-analyze verify` can check on a machine without a running systemd.
package struct SystemdUnit: Sendable {
    package let name: String
    let description: String
    package let command: [String]
    package let environment: [(String, String)]
    package let workingDirectory: String
    let logPath: String
    let limits: ResourceLimits

    package static func name(for user: UserName) -> String { "hydra-jupyter-\(user.value).service" }

    package init(user: UserName, command: [String], environment: [String: String], workingDirectory: String, logPath: String,
         limits: ResourceLimits) {
        name = Self.name(for: user)
        description = "hydra: Jupyter server of \(user.value)"
        self.command = command
        self.environment = environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.workingDirectory = workingDirectory
        self.logPath = logPath
        self.limits = limits
    }

    static func limitProperties(_ limits: ResourceLimits) -> [(String, String)] {
        var properties: [(String, String)] = []
        if let memory = limits.memoryMaxBytes { properties.append(("MemoryMax", "\(memory)")) }
        if let cpu = limits.cpuQuotaPercent { properties.append(("CPUQuota", "\(cpu)%")) }
        if let tasks = limits.tasksMax { properties.append(("TasksMax", "\(tasks)")) }
        return properties
    }

    /// The service's properties. OOMPolicy=continue: when MemoryMax is hit, the kernel's OOM
    /// killer ends the biggest process of the unit (normally the notebook kernel that allocates)
    /// and the server goes on, showing the kernel as dead.
    var serviceProperties: [(String, String)] {
        [("Type", "exec"), ("WorkingDirectory", workingDirectory), ("UMask", "0077"),
         ("StandardOutput", "append:\(logPath)"), ("StandardError", "append:\(logPath)"),
         ("OOMPolicy", "continue"), ("TimeoutStopSec", "10")]
    }

    var properties: [(String, String)] { serviceProperties + Self.limitProperties(limits) }

    /// `systemd-run` arguments: no secret among them (the token travels in a file).
    package var systemdRunArguments: [String] {
        ["--user", "--quiet", "--collect", "--unit=\(name)", "--description=\(description)"]
            + properties.map { "--property=\($0.0)=\($0.1)" }
            + environment.map { "--setenv=\($0.0)=\($0.1)" }
            + ["--"] + command
    }

    /// The unit file with the same settings, as an admin would write it.
    package var unitFile: String {
        func quoted(_ word: String) -> String {
            "\"" + word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "%", with: "%%") + "\""
        }
        var lines = ["# What hydra runs with systemd-run --user for this user (ipynb-launch unit).",
                     "[Unit]", "Description=\(description)", "", "[Service]",
                     "ExecStart=" + command.map(quoted).joined(separator: " ")]
        lines += environment.map { "Environment=" + quoted("\($0.0)=\($0.1)") }
        // Paths go through systemd's %-specifiers in a unit file; the limits do not.
        lines += serviceProperties.map { "\($0.0)=\($0.1.replacingOccurrences(of: "%", with: "%%"))" }
        lines += Self.limitProperties(limits).map { "\($0.0)=\($0.1)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
