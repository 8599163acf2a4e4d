import HydraSite
import HydraSystem
import FoundationEssentials

/// What the kernel recorded about one notebook server's limits in the systemd mode, where the
/// server's unit is a control group of its own carrying memory_max and tasks_max: how many of
/// its processes the OOM killer ended, and how often a fork or a new thread was refused. JupyterLab
/// shows only "kernel died"; these counts say why. They belong to the server's unit, so a new
/// server starts again at 0. (Detached servers have no group of their own: there a limit shows
/// in the kernel itself, see KernelLimitHelp.)
package struct LimitEvents: Sendable, Equatable, Codable {
    /// The server the counts belong to: a previous reading of another server is not compared.
    package let serverPID: Int32
    package let controlGroup: String
    /// memory.events `oom_kill`: processes of the server (normally kernels) the OOM killer ended.
    package let oomKills: Int
    /// pids.events `max`: forks and new threads refused because the server had tasks_max of them.
    package let taskLimitHits: Int
    /// memory.max; nil: no limit.
    package let memoryMaxBytes: UInt64?
    /// pids.max; nil: no limit.
    package let tasksMax: Int?

    enum CodingKeys: String, CodingKey {
        case serverPID = "server_pid", controlGroup = "control_group", oomKills = "oom_kills",
             taskLimitHits = "task_limit_hits", memoryMaxBytes = "memory_max_bytes", tasksMax = "tasks_max"
    }

    package init(serverPID: Int32, controlGroup: String, oomKills: Int, taskLimitHits: Int, memoryMaxBytes: UInt64?, tasksMax: Int?) {
        self.serverPID = serverPID
        self.controlGroup = controlGroup
        self.oomKills = oomKills
        self.taskLimitHits = taskLimitHits
        self.memoryMaxBytes = memoryMaxBytes
        self.tasksMax = tasksMax
    }

    /// The counts of the control group the server with `serverPID` runs in (cgroup v2); nil when
    /// the process is gone or its group has neither memory.events nor pids.events. Any account
    /// may read these files (the person, the web server's account). Cheap: one read of /proc and
    /// four of /sys. Only meaningful in the systemd mode, where the group is the server's unit.
    package static func read(serverPID: Int32, cgroupRoot: String = "/sys/fs/cgroup", procRoot: String = "/proc") -> LimitEvents? {
        guard let group = ControlGroup(ofProcess: serverPID, procRoot: procRoot, cgroupRoot: cgroupRoot) else { return nil }
        let memoryEvents = group.file("memory.events"), pidsEvents = group.file("pids.events")
        guard memoryEvents != nil || pidsEvents != nil else { return nil }
        return LimitEvents(serverPID: serverPID, controlGroup: group.path,
                           oomKills: count("oom_kill", in: memoryEvents), taskLimitHits: count("max", in: pidsEvents),
                           memoryMaxBytes: limit(group.file("memory.max")), tasksMax: limit(group.file("pids.max")).flatMap { Int(exactly: $0) })
    }

    /// A "KEY COUNT" line of an events file; 0 when the file or the key is missing.
    static func count(_ key: String, in events: String?) -> Int {
        for line in (events ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == key, let count = Int(fields[1]) { return count }
        }
        return 0
    }

    /// memory.max or pids.max: a number, or "max" for none.
    static func limit(_ text: String?) -> UInt64? {
        text.flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The counts for an admin: "1 process ended by the OOM killer, 0 forks or threads refused at pids.max".
    package var summary: String {
        "\(oomKills) \(oomKills == 1 ? "process" : "processes") ended by the OOM killer, "
            + "\(taskLimitHits) \(taskLimitHits == 1 ? "fork or thread" : "forks or threads") refused at pids.max"
    }

    /// What happened since `previous` (an earlier reading of the same server; nil or another
    /// server's: since this server started), in words a student understands; nil when nothing did.
    package func explanation(since previous: LimitEvents? = nil) -> String? {
        let baseline = previous.flatMap { $0.serverPID == serverPID && $0.controlGroup == controlGroup ? $0 : nil }
        let kills = oomKills - (baseline?.oomKills ?? 0)
        let refusals = taskLimitHits - (baseline?.taskLimitHits ?? 0)
        var sentences: [String] = []
        if kills > 0 {
            let stopped = kills == 1 ? "A kernel of yours was stopped" : "Kernels of yours were stopped \(kills) times"
            let cause = memoryMaxBytes.map {
                "because your notebook server used more than \(ResourceLimits.mebibytes($0)) of memory, this site's limit per person"
            } ?? "because the machine ran out of memory"
            sentences.append("\(stopped) \(cause). Save your work often and free memory you no longer need (del large variables), "
                             + "or restart the kernel; ask the site's administrators if you need more.")
        }
        if refusals > 0 {
            let most = tasksMax.map { "more than \($0) processes and threads, this site's limit per person" } ?? "more processes and threads"
            sentences.append("Your notebook server could not start \(most), so starting another one failed "
                             + "\(refusals == 1 ? "once" : "\(refusals) times"). Run fewer at once (a smaller pool of workers, "
                             + "fewer kernels and terminals); ask the site's administrators if you need more.")
        }
        return sentences.isEmpty ? nil : sentences.joined(separator: " ")
    }
}
