@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import Testing
@testable import HydraSystem

/// What a person learns when a limit hits them: the systemd mode's control group counts, read
/// from a fake /proc and /sys/fs/cgroup, and the words for them and for a detached kernel.
@Suite("Limit events: the cgroup's counts and what a person is told")
struct LimitEventsTests {
    static let group = "/user.slice/user-1001.slice/user@1001.service/app.slice/hydra-jupyter-alice.service"

    /// A fake /proc with PID 4242's cgroup file and a fake cgroup tree with `files` in its group.
    func fakeMachine(_ scratch: SystemLayerTests.Scratch, cgroupLine: String = "0::\(group)",
                     files: [String: String]) throws -> (proc: String, cgroup: String) {
        let proc = "\(scratch.path)/proc", cgroup = "\(scratch.path)/cgroup"
        try FileManager.default.createDirectory(atPath: "\(proc)/4242", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: cgroup + Self.group, withIntermediateDirectories: true)
        try "\(cgroupLine)\n".write(toFile: "\(proc)/4242/cgroup", atomically: true, encoding: .utf8)
        for (name, text) in files { try text.write(toFile: "\(cgroup)\(Self.group)/\(name)", atomically: true, encoding: .utf8) }
        return (proc, cgroup)
    }

    static let killedOnce = [
        "memory.events": "low 0\nhigh 0\nmax 57\noom 1\noom_kill 1\noom_group_kill 0\n",
        "pids.events": "max 0\n", "memory.max": "402653184\n", "pids.max": "100\n",
    ]

    @Test("the counts and limits come from the group named in /proc/PID/cgroup")
    func reads() throws {
        let scratch = try SystemLayerTests.Scratch()
        let roots = try fakeMachine(scratch, files: Self.killedOnce.merging(["pids.events": "max 7\n"]) { $1 })
        let events = try #require(LimitEvents.read(serverPID: 4242, cgroupRoot: roots.cgroup, procRoot: roots.proc))
        #expect(events == LimitEvents(serverPID: 4242, controlGroup: Self.group, oomKills: 1, taskLimitHits: 7,
                                      memoryMaxBytes: 384 << 20, tasksMax: 100))
    }

    @Test("\"max\" is no limit; a missing events file counts 0; no group or a v1-only machine is nil")
    func edges() throws {
        let scratch = try SystemLayerTests.Scratch()
        let roots = try fakeMachine(scratch, files: ["memory.events": "oom_kill 2\n", "memory.max": "max\n", "pids.max": "max\n"])
        let events = try #require(LimitEvents.read(serverPID: 4242, cgroupRoot: roots.cgroup, procRoot: roots.proc))
        #expect(events.oomKills == 2 && events.taskLimitHits == 0 && events.memoryMaxBytes == nil && events.tasksMax == nil)
        #expect(LimitEvents.read(serverPID: 4243, cgroupRoot: roots.cgroup, procRoot: roots.proc) == nil)

        let v1 = try SystemLayerTests.Scratch()
        let v1Roots = try fakeMachine(v1, cgroupLine: "12:memory:\(Self.group)\n1:name=systemd:\(Self.group)", files: Self.killedOnce)
        #expect(LimitEvents.read(serverPID: 4242, cgroupRoot: v1Roots.cgroup, procRoot: v1Roots.proc) == nil)
        let escape = try SystemLayerTests.Scratch()
        let escapeRoots = try fakeMachine(escape, cgroupLine: "0::/../../etc", files: Self.killedOnce)
        #expect(LimitEvents.read(serverPID: 4242, cgroupRoot: escapeRoots.cgroup, procRoot: escapeRoots.proc) == nil)
        let empty = try SystemLayerTests.Scratch()
        let emptyRoots = try fakeMachine(empty, files: [:])
        #expect(LimitEvents.read(serverPID: 4242, cgroupRoot: emptyRoots.cgroup, procRoot: emptyRoots.proc) == nil)
    }

    func events(kills: Int = 0, refusals: Int = 0, pid: Int32 = 4242, memory: UInt64? = 384 << 20, tasks: Int? = 100) -> LimitEvents {
        LimitEvents(serverPID: pid, controlGroup: Self.group, oomKills: kills, taskLimitHits: refusals, memoryMaxBytes: memory, tasksMax: tasks)
    }

    @Test("an OOM kill is told with the limit in MiB and what to do")
    func memoryWords() {
        #expect(events(kills: 1).explanation() == "A kernel of yours was stopped because your notebook server used more than "
            + "384 MiB of memory, this site's limit per person. Save your work often and free memory you no longer need "
            + "(del large variables), or restart the kernel; ask the site's administrators if you need more.")
        #expect(events(kills: 3).explanation()?.hasPrefix("Kernels of yours were stopped 3 times because") == true)
        #expect(events(kills: 1, memory: nil).explanation()?.contains("because the machine ran out of memory.") == true)
        #expect(events().explanation() == nil)
        #expect(events(kills: 1, refusals: 2).summary == "1 process ended by the OOM killer, 2 forks or threads refused at pids.max")
    }

    @Test("a refused fork is told with tasks_max")
    func taskWords() throws {
        let text = try #require(events(refusals: 2).explanation())
        #expect(text.hasPrefix("Your notebook server could not start more than 100 processes and threads, this site's limit per person, "
                               + "so starting another one failed 2 times."))
        let both = try #require(events(kills: 1, refusals: 1).explanation())
        #expect(both.contains("A kernel of yours was stopped") && both.contains("failed once"))
    }

    @Test("since a previous reading of the same server only what is new is told; another server's reading does not count")
    func since() {
        #expect(events(kills: 2).explanation(since: events(kills: 2)) == nil)
        #expect(events(kills: 3).explanation(since: events(kills: 2))?.hasPrefix("A kernel of yours was stopped") == true)
        #expect(events(kills: 1).explanation(since: events(kills: 5, pid: 99))?.hasPrefix("A kernel of yours") == true)
        #expect(events(refusals: 4).explanation(since: events(kills: 1, refusals: 4)) == nil)
    }

    @Test("the JSON names the counts in snake case and reads back")
    func json() throws {
        let original = events(kills: 1, refusals: 2)
        let text = String(decoding: try JSONEncoder().encode(original), as: UTF8.self)
        for key in ["\"oom_kills\":1", "\"task_limit_hits\":2", "\"memory_max_bytes\":402653184", "\"tasks_max\":100", "\"server_pid\":4242"] {
            #expect(text.contains(key), "\(key) in \(text)")
        }
        #expect(try JSONDecoder().decode(LimitEvents.self, from: Data(text.utf8)) == original)
    }
}

@Suite("Kernel limit help: what a kernel adds to a MemoryError or a refused fork")
struct KernelLimitHelpTests {
    func config(_ limits: String) throws -> HydraConfig {
        try HydraConfig.parse("[site]\npublic_url = \"https://jupyter.example.org\"\n[limits]\n" + limits, path: "/etc/hydra/hydra.toml")
    }

    @Test("detached: per process and for the account, naming the keys and the MiB")
    func detached() throws {
        let help = KernelLimitHelp(Supervision(config: try config("memory_max = \"512M\"\ntasks_max = 150\n"), systemdRunning: false))
        #expect(help.memory == "This notebook server may use at most 512 MiB of memory per process (the site's limit, "
            + "limits.memory_max). Free some memory (del large variables) or restart the kernel; ask the site's administrators if you need more.")
        #expect(help.tasks?.hasPrefix("Your account may run at most 150 processes and threads at once (the site's limit, limits.tasks_max)") == true)
    }

    @Test("systemd: for the server with its kernels; no limits, nothing to say")
    func systemd() throws {
        let help = KernelLimitHelp(Supervision(config: try config("memory_max = \"384M\"\ntasks_max = 100\n"), systemdRunning: true))
        #expect(help.memory?.contains("at most 384 MiB of memory with all its kernels together") == true)
        #expect(help.tasks?.hasPrefix("This notebook server may run at most 100 processes") == true)
        let none = KernelLimitHelp(Supervision(config: try config("memory_max = \"\"\ntasks_max = 0\n"), systemdRunning: false))
        #expect(none.isEmpty)
    }

    @Test("the server learns where the extension is only when there is something to explain")
    func environment() throws {
        let account = PasswdEntry(name: "alice", uid: 1001, gid: 1001, gecos: "", home: "/home/alice", shell: "/bin/bash")
        let identity = LaunchIdentity(name: try UserName("alice"), account: account)
        func environment(_ limits: String) throws -> [String: String] {
            let unit = LocalBackend(config: try config("supervisor = \"detached\"\n" + limits), identity: identity).unit()
            return Dictionary(uniqueKeysWithValues: unit.environment)
        }
        #expect(try environment("memory_max = \"1G\"\n")["HYDRA_KERNEL_EXTENSION"] == "/run/hydra/alice/kernel-extension")
        #expect(try environment("memory_max = \"\"\ntasks_max = 0\n")["HYDRA_KERNEL_EXTENSION"] == nil)
    }

    @Test("the extension and its words are written beside each other, the person's alone")
    func written() throws {
        let scratch = try SystemLayerTests.Scratch()
        let help = KernelLimitHelp(Supervision(config: try config("memory_max = \"1G\"\ntasks_max = 0\n"), systemdRunning: false))
        try help.write(into: try DirectoryHandle.open(scratch.path))
        let words = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: URL(fileURLWithPath: "\(scratch.path)/hydra_limits.json")))
        #expect(words == ["memory": try #require(help.memory)])
        let module = try String(contentsOfFile: "\(scratch.path)/hydra_limits.py", encoding: .utf8)
        #expect(module.contains("def load_ipython_extension(shell):") && module.contains("\"hydra_limits.json\""))
        #expect(try FileStatus.ofEntry("\(scratch.path)/hydra_limits.py")?.permissions == 0o600)
    }
}
