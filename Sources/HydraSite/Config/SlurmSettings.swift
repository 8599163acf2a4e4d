import HydraSystem

/// `[slurm]`: how each person's server is submitted as a Slurm job. Every value becomes one
/// sbatch argument, never a shell word.
package struct SlurmSettings: Sendable, Equatable {
    /// Where sbatch, squeue, scancel and sinfo are (absolute).
    package var binDir: String
    /// Empty: the cluster's default partition (and account, QOS).
    package var partition: String
    package var account: String
    package var qos: String
    /// The job's wall-clock limit in one of sbatch's formats ("8:00:00", "1-00:00:00", "90").
    package var timeLimit: String
    /// Memory per server ("4G"); empty: the partition's default.
    package var memory: String
    package var cpus: Int
    /// Further `--option=value` arguments, each checked against `forbiddenOptions`.
    package var extraOptions: [String]
    /// The TCP ports a server may listen on, on its node. hydra-gate connects only to these,
    /// and the firewall between the web host and the nodes must let them through.
    package var portRange: ClosedRange<Int>

    /// Options hydra sets itself, or that would run the job as someone else, elsewhere or
    /// with a different environment.
    static let forbiddenOptions: Set<String> = [
        "--export", "--export-file", "--get-user-env", "--wrap", "--output", "--error", "--input", "--job-name",
        "--uid", "--gid", "--chdir", "--parsable", "--test-only", "--dependency", "--requeue", "--no-requeue",
        "--array", "--wait", "--hold", "--batch", "--propagate", "--container", "--open-mode", "--kill-on-invalid-dep",
    ]

    /// How servers run, in words (ipynb-launch status, the admin page).
    package var summary: String {
        let where_ = partition.isEmpty ? "the default partition" : "partition \(partition)"
        return "Slurm jobs in \(where_) (\(cpus) CPU, time limit \(timeLimit)\(memory.isEmpty ? "" : ", \(memory)"))"
    }

    /// The sbatch arguments of these settings (without the job's name, output and script).
    package var sbatchArguments: [String] {
        var arguments = ["--no-requeue", "--time=\(timeLimit)", "--cpus-per-task=\(cpus)", "--nodes=1", "--ntasks=1"]
        if !partition.isEmpty { arguments.append("--partition=\(partition)") }
        if !account.isEmpty { arguments.append("--account=\(account)") }
        if !qos.isEmpty { arguments.append("--qos=\(qos)") }
        if !memory.isEmpty { arguments.append("--mem=\(memory)") }
        return arguments + extraOptions
    }

    /// sbatch's time formats: minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
    static func isTimeLimit(_ text: String) -> Bool {
        text.wholeMatch(of: /(\d{1,7}(:\d{1,2}){0,2}|\d{1,4}-\d{1,2}(:\d{1,2}){0,2})/) != nil
    }

    /// A Slurm name (partition, account, QOS): letters, digits, '_', '-', '.'.
    static func isSlurmName(_ text: String) -> Bool {
        text.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) } && !text.hasPrefix("-")
    }

    /// Why an extra option cannot be passed, or nil.
    static func problem(withOption option: String) -> String? {
        guard option.hasPrefix("--"), option.count > 2 else { return "'\(option)' must be a long option such as --gres=gpu:1" }
        guard option.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) else {
            return "'\(option)' must not contain spaces or control characters"
        }
        let name = String(option.prefix { $0 != "=" })
        if forbiddenOptions.contains(name) { return "\(name) is set by hydra or would change who or where the job runs" }
        return nil
    }
}

extension SlurmSettings {
    /// What `[slurm]` means when it says nothing.
    static let defaults = SlurmSettings(binDir: "/usr/bin", partition: "", account: "", qos: "", timeLimit: "8:00:00", memory: "",
                                        cpus: 1, extraOptions: [], portRange: 20000...29999)
}

extension TableReader {
    /// `[slurm]`, or a profile's `slurm` table over the site's `[slurm]` (`base`).
    mutating func slurmSettings(over base: SlurmSettings = .defaults) throws(ConfigError) -> SlurmSettings {
        let settings = SlurmSettings(
            binDir: try absolutePath("bin_dir", default: base.binDir),
            partition: try string("partition", default: base.partition),
            account: try string("account", default: base.account),
            qos: try string("qos", default: base.qos),
            timeLimit: try string("time_limit", default: base.timeLimit),
            memory: try string("memory", default: base.memory),
            cpus: try int("cpus", default: base.cpus, in: 1...1024),
            extraOptions: try strings("extra_sbatch_options", default: base.extraOptions),
            portRange: try portRange("port_range", default: base.portRange))
        for (key, value) in [("partition", settings.partition), ("account", settings.account), ("qos", settings.qos)]
        where !value.isEmpty && !SlurmSettings.isSlurmName(value) {
            throw invalid(key, "'\(value)' is not a Slurm name (letters, digits, '_', '-', '.')")
        }
        guard SlurmSettings.isTimeLimit(settings.timeLimit) else {
            throw invalid("time_limit", "'\(settings.timeLimit)' is not one of sbatch's time formats, such as 90, 8:00:00 or 1-00:00:00")
        }
        if !settings.memory.isEmpty, ResourceLimits.bytes(settings.memory) == nil {
            throw invalid("memory", "'\(settings.memory)' is not a size such as 512M or 4G (\"\" for the partition's default)")
        }
        for option in settings.extraOptions {
            if let problem = SlurmSettings.problem(withOption: option) { throw invalid("extra_sbatch_options", problem) }
        }
        return settings
    }

    /// `[first, last]`: unprivileged ports, at least 16 of them (a node runs many servers).
    private mutating func portRange(_ key: String, default fallback: ClosedRange<Int>) throws(ConfigError) -> ClosedRange<Int> {
        let bounds = try integers(key, default: [fallback.lowerBound, fallback.upperBound])
        guard bounds.count == 2, 1024 <= bounds[0], bounds[0] + 15 <= bounds[1], bounds[1] <= 65535 else {
            throw invalid(key, "must be [first, last] with 1024 <= first, last <= 65535 and at least 16 ports, such as [20000, 29999]")
        }
        return bounds[0]...bounds[1]
    }
}
