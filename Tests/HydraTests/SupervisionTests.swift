@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("Limits and supervision: the mode chosen, the limits from the config, the unit hydra would start")
struct SupervisionTests {
    static let minimal = "[site]\npublic_url = \"https://jupyter.example.org\"\n"

    func config(_ extra: String) throws(ConfigError) -> HydraConfig {
        try HydraConfig.parse(Self.minimal + extra, path: "/etc/hydra/hydra.toml") as HydraConfig
    }

    @Test("sizes take systemd's base-1024 suffixes; anything else is refused")
    func sizes() {
        #expect(ResourceLimits.bytes("512M") == 512 << 20)
        #expect(ResourceLimits.bytes("4G") == 4 << 30)
        #expect(ResourceLimits.bytes("1048576") == 1_048_576)
        for bad in ["", "G", "4Q", "-1G", "0", "1.5G", "4 G", "99999999999T", "４G"] {
            #expect(ResourceLimits.bytes(bad) == nil, "\(bad)")
        }
        #expect(ResourceLimits.percent("200%") == 200)
        for bad in ["200", "0%", "-5%", "x%", "%"] { #expect(ResourceLimits.percent(bad) == nil, "\(bad)") }
    }

    @Test("per-user overrides change only what they name")
    func overrides() throws {
        let config = try config("[limits]\nmemory_max = \"1G\"\ntasks_max = 100\n[limits.users.alice]\nmemory_max = \"8G\"\n[limits.users.bob]\ncpu_quota = \"\"\n")
        #expect(config.limits.limits(for: try UserName("alice")) == ResourceLimits(memoryMaxBytes: 8 << 30, cpuQuotaPercent: 200, tasksMax: 100))
        #expect(config.limits.limits(for: try UserName("bob")) == ResourceLimits(memoryMaxBytes: 1 << 30, cpuQuotaPercent: nil, tasksMax: 100))
        #expect(config.limits.limits(for: try UserName("carol")) == config.limits.defaults)
    }

    @Test("a bad limit, an unknown supervisor, a bad user table or a misspelt key is an error naming the key")
    func errors() {
        let cases: [(String, String)] = [
            ("[limits]\nmemory_max = \"4Q\"\n", "limits.memory_max"),
            ("[limits]\ncpu_quota = \"200\"\n", "limits.cpu_quota"),
            ("[limits]\ntasks_max = -1\n", "limits.tasks_max"),
            ("[limits]\nsupervisor = \"upstart\"\n", "limits.supervisor"),
            ("[limits.users.\"Bad Name\"]\nmemory_max = \"1G\"\n", "limits.users.Bad Name"),
            ("[limits.users.alice]\nmemroy_max = \"1G\"\n", "limits.users.alice.memroy_max"),
            ("[limits]\nusers = 3\n", "limits.users"),
        ]
        for (text, key) in cases {
            do throws(ConfigError) {
                _ = try config(text)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(key), "\(text) -> \(error.description)")
            }
        }
    }

    @Test("auto means systemd only where systemd is PID 1; an explicit setting is kept")
    func mode() throws {
        let auto = try config("")
        #expect(Supervision(config: auto, systemdRunning: true).mode == .systemd)
        #expect(Supervision(config: auto, systemdRunning: false).mode == .detached)
        #expect(Supervision(config: auto, systemdRunning: false).reason.contains("not PID 1"))
        #expect(Supervision(config: try config("[limits]\nsupervisor = \"detached\"\n"), systemdRunning: true).mode == .detached)
        #expect(Supervision(config: try config("[limits]\nsupervisor = \"systemd\"\n"), systemdRunning: false).mode == .systemd)
    }

    @Test("the detached summary says what setrlimit applies and that CPU quota needs systemd")
    func detachedSummary() throws {
        let summary = Supervision(config: try config(""), systemdRunning: false).summary
        #expect(summary.contains("RLIMIT_DATA") && summary.contains("RLIMIT_NPROC") && summary.contains("cpu_quota needs systemd"))
        let none = Supervision(config: try config("[limits]\nmemory_max = \"\"\ncpu_quota = \"\"\ntasks_max = 0\n"), systemdRunning: false)
        #expect(none.summary.hasSuffix("limits: none"))
    }

    @Test("the unit carries the limits, keeps the server alive when a kernel is OOM-killed, and no secret")
    func unit() throws {
        let unit = SystemdUnit(user: try UserName("alice"), command: ["/opt/j/bin/jupyter-lab", "--config=/home/alice/.hydra/c.py"],
                               environment: ["HYDRA_USER": "alice", "HYDRA_TOKEN_FILE": "/run/hydra/alice/jupyter/hydra-token"],
                               workingDirectory: "/home/alice", logPath: "/run/hydra/alice/server.log",
                               limits: ResourceLimits(memoryMaxBytes: 1 << 30, cpuQuotaPercent: 150, tasksMax: 64))
        #expect(unit.name == "hydra-jupyter-alice.service")
        let arguments = unit.systemdRunArguments
        #expect(arguments.prefix(3) == ["--user", "--quiet", "--collect"])
        for property in ["MemoryMax=1073741824", "CPUQuota=150%", "TasksMax=64", "OOMPolicy=continue", "Type=exec"] {
            #expect(arguments.contains("--property=\(property)"), "\(property)")
            #expect(unit.unitFile.contains("\n\(property)\n"), "\(property)")
        }
        #expect(Array(arguments.suffix(3)) == ["--", "/opt/j/bin/jupyter-lab", "--config=/home/alice/.hydra/c.py"])
        #expect(unit.unitFile.contains("ExecStart=\"/opt/j/bin/jupyter-lab\" \"--config=/home/alice/.hydra/c.py\""))
        #expect(!arguments.joined().contains("HYDRA_TOKEN=") && !unit.unitFile.contains("HYDRA_TOKEN="))
    }

    @Test("a % in a path is escaped for the unit file's specifiers, not in CPUQuota")
    func percentEscaping() throws {
        let unit = SystemdUnit(user: try UserName("alice"), command: ["/x/100%/jupyter"], environment: [:],
                               workingDirectory: "/home/alice", logPath: "/run/50%/server.log",
                               limits: ResourceLimits(cpuQuotaPercent: 100))
        #expect(unit.unitFile.contains("ExecStart=\"/x/100%%/jupyter\""))
        #expect(unit.unitFile.contains("StandardOutput=append:/run/50%%/server.log"))
        #expect(unit.unitFile.contains("\nCPUQuota=100%\n"))
    }
}

@Suite("ipynb-launch check: the Jupyter in server.python_env")
struct JupyterEnvironmentCheckTests {
    @Test("versions come from pip's dist-info folders; other packages and stray names are ignored")
    func versionsFromDistInfo() throws {
        let environment = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-env-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: environment) }
        let packages = "\(environment)/lib/python3.11/site-packages"
        for entry in ["jupyter_server-2.21.1.dist-info", "jupyterlab-4.6.6.dist-info", "jupyterlab_server-2.27.3.dist-info",
                      "ipykernel", "notebook-7.0.0.dist-info"] {
            try FileManager.default.createDirectory(atPath: "\(packages)/\(entry)", withIntermediateDirectories: true)
        }
        let found = LaunchCheck.installedVersions(in: environment)
        #expect(found == ["jupyter_server": "2.21.1", "jupyterlab": "4.6.6"])   // no ipykernel: only a folder, not installed by pip
        #expect(LaunchCheck.installedVersions(in: "\(environment)/nowhere").isEmpty)
    }

    @Test("the slice's ceiling: every property set, the unlimited ones reset; recorded only once systemd took it")
    func sliceCeiling() throws {
        let name = try UserName("ada")
        let ceiling = SliceCeiling(uid: 1234, limits: ResourceLimits(memoryMaxBytes: 1 << 30, cpuQuotaPercent: 200, tasksMax: nil))
        #expect(ceiling.unit == "user-1234.slice")
        #expect(ceiling.properties == ["MemoryMax=1073741824", "CPUQuota=200%", "TasksMax=infinity"])
        #expect(SliceCeiling(uid: 1234, limits: ResourceLimits()).properties == ["MemoryMax=infinity", "CPUQuota=", "TasksMax=infinity"])
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-ceiling-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        var calls: [[String]] = []
        #expect(!ceiling.isRecorded(stateDir: state, name: name))
        // systemctl refusing: nothing recorded, so the front asks addldapuser again next time.
        #expect(throws: StepFailure.self) {
            try ceiling.apply(stateDir: state, name: name) { _, _ in throw StepFailure("systemctl failed", status: .systemError) }
        }
        #expect(!ceiling.isRecorded(stateDir: state, name: name))
        try ceiling.apply(stateDir: state, name: name) { program, arguments in calls.append([program] + arguments) }
        #expect(calls == [["/usr/bin/systemctl", "set-property", "user-1234.slice", "MemoryMax=1073741824", "CPUQuota=200%", "TasksMax=infinity"]])
        #expect(ceiling.isRecorded(stateDir: state, name: name))
        // Another ceiling (the site's profiles or the person's groups changed), or another UID: not recorded.
        #expect(!SliceCeiling(uid: 1234, limits: ResourceLimits(memoryMaxBytes: 4 << 30)).isRecorded(stateDir: state, name: name))
        #expect(!SliceCeiling(uid: 1235, limits: ceiling.limits).isRecorded(stateDir: state, name: name))
        let mode = try FileManager.default.attributesOfItem(atPath: SliceCeiling.recordPath(stateDir: state, name: name))[.posixPermissions] as? Int
        #expect(mode == 0o644)
    }

}
