import Testing
@testable import HydraCore
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

    @Test("a missing Slurm installation is a configuration error naming the path, before anything runs")
    func notInstalled() throws {
        var settings = try #require(try HydraConfig.parse(ConfigTests.minimal + "[slurm]\nbin_dir = \"/nonexistent/slurm/bin\"\n", path: "x").slurm)
        settings.partition = "hydra"
        #expect(throws: SlurmFailure.notInstalled(path: "/nonexistent/slurm/bin/sinfo")) { try SlurmClient(settings: settings).partition() }
        #expect(SlurmFailure.notInstalled(path: "/x").exitStatus == .configurationError)
        #expect(SlurmFailure.controllerUnreachable(command: "sinfo", detail: "x").exitStatus == .temporaryFailure)
    }
}
