@testable import HydraSite
@testable import HydraServers
import Testing
@testable import HydraSystem

@Suite("[slurm]: strictly checked, every value one sbatch argument")
struct SlurmSettingsTests {
    func parse(_ slurm: String) throws(ConfigError) -> SlurmSettings? {
        try HydraConfig.parse(ConfigTests.minimal + "[slurm]\n" + slurm, path: "/etc/hydra/hydra.toml").slurm
    }

    func reason(_ slurm: String) -> String? {
        do { _ = try parse(slurm); return nil } catch { return error.description }
    }

    @Test("no [slurm] table: no Slurm; an empty one: the cluster's defaults, 1 CPU, 8 hours, never requeued")
    func defaults() throws {
        #expect(try HydraConfig.parse(ConfigTests.minimal, path: "x").slurm == nil)
        let settings = try #require(try parse(""))
        #expect(settings.binDir == "/usr/bin")
        #expect(settings.sbatchArguments == ["--no-requeue", "--time=8:00:00", "--cpus-per-task=1", "--nodes=1", "--ntasks=1"])
    }

    @Test("each setting becomes its own argument, the site's extras last")
    func arguments() throws {
        let settings = try #require(try parse("""
            partition = "gpu"
            account = "physics-101"
            qos = "teaching"
            time_limit = "1-00:00:00"
            memory = "4G"
            cpus = 2
            extra_sbatch_options = ["--gres=gpu:1", "--constraint=avx2"]
            """))
        #expect(settings.sbatchArguments == ["--no-requeue", "--time=1-00:00:00", "--cpus-per-task=2", "--nodes=1", "--ntasks=1",
                                             "--partition=gpu", "--account=physics-101", "--qos=teaching", "--mem=4G",
                                             "--gres=gpu:1", "--constraint=avx2"])
    }

    @Test("sbatch's time formats are accepted, anything else refused", arguments: [
        ("90", true), ("30:00", true), ("8:00:00", true), ("2-12", true), ("2-12:30", true), ("1-00:00:00", true),
        ("", false), ("8h", false), ("1:2:3:4", false), ("-1", false), ("1-", false), ("1--2", false), ("8:00:00 --uid=0", false),
    ])
    func timeFormats(text: String, accepted: Bool) {
        #expect(SlurmSettings.isTimeLimit(text) == accepted)
    }

    @Test("threat: an extra option that would run the job as someone else, elsewhere, or smuggle a second argument is refused",
          arguments: ["--uid=0", "--export=ALL", "--wrap=id", "--output=/etc/passwd", "--chdir=/root", "--get-user-env",
                      "--gres=gpu:1 --uid=0", "-w node1", "--job-name=other", "--dependency=afterok:1", "--gres=gpu\n:1"])
    func hostileExtraOptions(option: String) {
        let message = reason("extra_sbatch_options = [\"\(option.replacingOccurrences(of: "\n", with: "\\n"))\"]")
        #expect(message?.contains("slurm.extra_sbatch_options") == true)
    }

    @Test("threat: a partition, account or QOS that is not a plain Slurm name is refused", arguments: [
        "partition = \"--uid=0\"", "account = \"a b\"", "qos = \"x;id\"", "partition = \"gpu,debug\"",
    ])
    func hostileNames(line: String) {
        #expect(reason(line)?.contains("is not a Slurm name") == true)
    }

    @Test("a misspelt key, a bad size or a bad path is an error naming the key")
    func strictness() {
        #expect(reason("partiton = \"gpu\"")?.contains("slurm.partiton") == true)
        #expect(reason("memory = \"4 GB\"")?.contains("slurm.memory") == true)
        #expect(reason("bin_dir = \"usr/bin\"")?.contains("slurm.bin_dir") == true)
        #expect(reason("cpus = 0")?.contains("slurm.cpus") == true)
    }

    @Test("port_range: 20000-29999 by default; unprivileged, ordered, at least 16 ports", arguments: [
        ("port_range = [21000, 21999]", "21000...21999"), ("", "20000...29999"),
        ("port_range = [80, 8080]", nil), ("port_range = [30000, 20000]", nil), ("port_range = [20000, 20010]", nil),
        ("port_range = [20000, 70000]", nil), ("port_range = [20000]", nil), ("port_range = \"20000-29999\"", nil),
    ] as [(String, String?)])
    func portRange(line: String, expected: String?) throws {
        if let expected {
            let range = try #require(try parse(line)).portRange
            #expect("\(range.lowerBound)...\(range.upperBound)" == expected)
        } else {
            #expect(reason(line)?.contains("slurm.port_range") == true)
        }
    }

    @Test("[server] backend: local by default; slurm only with a [slurm] table; nothing else")
    func backend() throws {
        #expect(try HydraConfig.parse(ConfigTests.minimal, path: "x").server.backend == .local)
        let slurm = try HydraConfig.parse(ConfigTests.minimal + "[server]\nbackend = \"slurm\"\n[slurm]\npartition = \"hydra\"\n", path: "x")
        #expect(slurm.server.backend == .slurm && slurm.slurm?.partition == "hydra")
        for text in ["[server]\nbackend = \"slurm\"\n", "[server]\nbackend = \"kubernetes\"\n"] {
            do {
                _ = try HydraConfig.parse(ConfigTests.minimal + text, path: "x")
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.description.contains("server.backend"))
            }
        }
    }
}

@Suite("SlurmClient reads sinfo")
struct SlurmClientTests {
    @Test("one line per partition and node state, summed; the default partition marked; state suffixes dropped")
    func sinfo() {
        let partitions = SlurmClient.partitions(fromSinfo: """
            hydra*|up|1|mix|node1
            hydra*|up|1|idle~|node2
            gpu|down|3|drain*|gpu[1-3]
            garbage line
            """)
        #expect(partitions == [
            SlurmClient.Partition(name: "hydra", isDefault: true, availability: "up", nodesByState: ["mix": 1, "idle": 1],
                                  nodeLists: ["node1", "node2"]),
            SlurmClient.Partition(name: "gpu", isDefault: false, availability: "down", nodesByState: ["drain": 3], nodeLists: ["gpu[1-3]"]),
        ])
        #expect(partitions[0].nodeCount == 2)
    }

    @Test("squeue's jobs: every state falls into waiting, running or ending; headers and noise are skipped")
    func squeue() {
        let jobs = SlurmClient.jobs(fromSqueue: """
            41|PENDING|Resources||2026-12-01T10:00:00|alice|hydra-alice
            42|RUNNING|None|node2|2026-12-01T09:00:00|bob|hydra-bob
            43|COMPLETING|None|node1|2026-12-01T08:00:00|alice|hydra-alice
            44|CONFIGURING|None|node1|N/A|carol|hydra-carol
            JOBID|STATE|REASON|NODELIST|START_TIME|USER|NAME
            45|RUNNING|None|node1|N/A|short
            slurm_load_jobs error: Socket timed out
            """)
        #expect(jobs.map(\.id) == ["41", "42", "43", "44"])
        #expect(jobs.map(\.phase) == [.waiting, .running, .ending, .waiting])
        #expect(jobs[0] == SlurmClient.Job(id: "41", state: "PENDING", reason: "Resources", node: "", startTime: "2026-12-01T10:00:00",
                                           user: "alice", name: "hydra-alice"))
        #expect(jobs[1].node == "node2")
        #expect(SlurmClient.jobs(fromSqueue: "").isEmpty)
    }

    @Test("a missing Slurm installation is a configuration error naming the path, before anything runs")
    func notInstalled() throws {
        var settings = try #require(try HydraConfig.parse(ConfigTests.minimal + "[slurm]\nbin_dir = \"/nonexistent/slurm/bin\"\n", path: "x").slurm)
        settings.partition = "hydra"
        #expect(throws: SlurmFailure.notInstalled(path: "/nonexistent/slurm/bin/sinfo")) { try SlurmClient(settings: settings).partition() }
        #expect(SlurmFailure.notInstalled(path: "/x").exitStatus == .configurationError)
        #expect(SlurmFailure.controllerUnreachable(command: "sinfo", detail: "x").exitStatus == .temporaryFailure)
    }
}

@Suite("SlurmBackend: the job it submits")
struct SlurmBackendTests {
    let account = PasswdEntry(name: "alice", uid: 1001, gid: 1001, gecos: "", home: "/home/alice", shell: "/bin/bash")

    func backend(_ extra: String = "") throws -> SlurmBackend {
        let config = try HydraConfig.parse(ConfigTests.minimal + "[server]\nbackend = \"slurm\"\n[slurm]\nport_range = [21000, 21999]\n" + extra,
                                           path: "x")
        return SlurmBackend(config: config, identity: LaunchIdentity(name: try UserName("alice"), account: account), settings: try #require(config.slurm))
    }

    @Test("the job script is constant: the command and every value come as arguments and environment")
    func script() throws {
        let backend = try backend()
        #expect(SlurmBackend.jobScript.hasPrefix("#!/bin/sh\n"))
        #expect(!SlurmBackend.jobScript.contains("alice") && SlurmBackend.jobScript.contains("\"$@\""))
        #expect(backend.command.arguments == ["/opt/hydra/jupyter/bin/jupyter-lab", "--config=/home/alice/.hydra/jupyter_config.py"])
    }

    @Test("threat: the token never goes into sbatch's environment or arguments (scontrol and squeue show them); only a file's name")
    func noTokenInTheJob() throws {
        let environment = try backend().environment
        #expect(environment["HYDRA_TOKEN_FILE"] == "/home/alice/.hydra/slurm/token")
        #expect(environment["HYDRA_ENDPOINT_FILE"] == "/home/alice/.hydra/slurm/endpoint")
        #expect(environment["HYDRA_PORT_RANGE"] == "21000 21999")
        #expect(environment["HYDRA_SOCK"] == nil && environment["HOME"] == "/home/alice" && environment["USER"] == "alice")
        #expect(!environment.keys.contains { $0.contains("TOKEN") && $0 != "HYDRA_TOKEN_FILE" })
    }

    @Test("the summary says where servers run")
    func summary() throws {
        #expect(try backend("partition = \"gpu\"\ncpus = 2\nmemory = \"4G\"\n").summary
                == "Slurm jobs in partition gpu (2 CPU, time limit 8:00:00, 4G)")
    }
}
