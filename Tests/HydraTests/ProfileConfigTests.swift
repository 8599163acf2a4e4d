@testable import HydraSite
import Testing

/// `[[profiles]]`: strictly checked like every table; without it, one implicit profile made of
/// `[server]`, `[limits]` and `[slurm]`, so a site without profiles works as before.
@Suite("Profiles in hydra.toml")
struct ProfileConfigTests {
    static let site = """
        [site]
        public_url = "https://jupyter.example.org"
        [limits]
        memory_max = "2G"
        [slurm]
        partition = "batch"
        time_limit = "8:00:00"
        cpus = 1

        """

    static let course = """
        [[profiles]]
        name = "course"
        title = "Course"
        description = "A small server for the course"
        default = true
        [profiles.limits]
        memory_max = "1G"

        """

    static let research = """
        [[profiles]]
        name = "research"
        title = "Research (GPU)"
        backend = "slurm"
        python_env = "/opt/hydra/research"
        groups = ["research"]
        [profiles.slurm]
        partition = "gpu"
        cpus = 8
        memory = "32G"
        extra_sbatch_options = ["--gres=gpu:1"]

        """

    func parse(_ text: String) throws -> HydraConfig { try HydraConfig.parse(text, path: "/etc/hydra/hydra.toml") }

    func error(_ text: String) -> String? {
        do { _ = try HydraConfig.parse(text, path: "/etc/hydra/hydra.toml"); return nil } catch { return error.description }
    }

    @Test("without [[profiles]], one implicit profile for everyone, and a server runs as before")
    func implicitProfile() throws {
        let config = try parse(Self.site)
        #expect(!config.hasProfiles && config.profiles.map(\.name) == [Profile.implicitName])
        #expect(config.profiles(forMemberOf: []).map(\.name) == [Profile.implicitName])
        #expect(config.applying(config.profiles[0]) == config)
    }

    @Test("a profile takes the site's values for what it leaves out, and its own over them")
    func inheritance() throws {
        let config = try parse(Self.site + Self.course + Self.research)
        let (course, research) = (config.profiles[0], config.profiles[1])
        #expect(course.backend == .local && course.limits.memoryMaxBytes == 1 << 30 && course.limits.cpuQuotaPercent == 200)
        #expect(course.pythonEnv == config.server.pythonEnv && course.isDefault && course.groups.isEmpty)
        #expect(research.slurm?.partition == "gpu" && research.slurm?.cpus == 8 && research.slurm?.memory == "32G")
        #expect(research.slurm?.timeLimit == "8:00:00" && research.slurm?.portRange == config.slurm?.portRange)
        #expect(research.slurm?.sbatchArguments.contains("--gres=gpu:1") == true)
        let applied = config.applying(research)
        #expect(applied.server.backend == .slurm && applied.slurmJobs?.partition == "gpu" && applied.server.pythonEnv == "/opt/hydra/research")
        #expect(config.applying(course).limits.defaults.memoryMaxBytes == 1 << 30 && config.applying(course).slurmJobs == nil)
    }

    @Test("who may choose what: groups, else everyone; the default, else the first")
    func choice() throws {
        let config = try parse(Self.site + Self.course + Self.research)
        #expect(config.profiles(forMemberOf: ["hydra"]).map(\.name) == ["course"])
        #expect(config.profiles(forMemberOf: ["hydra", "research"]).map(\.name) == ["course", "research"])
        #expect(HydraConfig.defaultProfile(of: config.profiles(forMemberOf: ["research"]))?.name == "course")
        let researchOnly = try parse(Self.site + Self.research)
        #expect(HydraConfig.defaultProfile(of: researchOnly.profiles(forMemberOf: ["hydra"])) == nil)
    }

    @Test("the ceiling on a person's slice: the most their local profiles allow, property by property; none for Slurm only")
    func ceiling() throws {
        let name = try UserName("ada")
        let big = Self.research.replacingOccurrences(of: "backend = \"slurm\"", with: "backend = \"local\"")
            .replacingOccurrences(of: "[profiles.slurm]\npartition = \"gpu\"\ncpus = 8\nmemory = \"32G\"\nextra_sbatch_options = [\"--gres=gpu:1\"]",
                                  with: "[profiles.limits]\nmemory_max = \"4G\"\ncpu_quota = \"\"\ntasks_max = 50")
        let config = try parse(Self.site + Self.course + big)
        let course = config.profiles[0].limits
        #expect(config.ceiling(for: name, memberOf: ["hydra"]) == course)
        let both = config.ceiling(for: name, memberOf: ["hydra", "research"])
        #expect(both == ResourceLimits(memoryMaxBytes: 4 << 30, cpuQuotaPercent: nil, tasksMax: max(course.tasksMax ?? 0, 50)))
        // A Slurm profile adds nothing on this machine; Slurm profiles only: no ceiling.
        #expect(try parse(Self.site + Self.course + Self.research).ceiling(for: name, memberOf: ["research"]) == course)
        #expect(try parse(Self.site + Self.research).ceiling(for: name, memberOf: ["research"]) == ResourceLimits())
        // Without profiles: the site's limits for this person, with their own [limits.users] table.
        let plain = try parse(Self.site + "[limits.users.ada]\nmemory_max = \"3G\"\n")
        #expect(plain.ceiling(for: name, memberOf: []).memoryMaxBytes == 3 << 30)
        #expect(plain.ceiling(for: try UserName("bob"), memberOf: []).memoryMaxBytes == 2 << 30)
    }

    @Test("hostile or broken profiles are errors naming the key", arguments: [
        ("name = \"../x\"", "profiles[0].name"), ("name = \"\(String(repeating: "a", count: 33))\"", "profiles[0].name"),
        ("name = \"Course\"", "profiles[0].name"), ("name = \"\"", "profiles[0].name"),
        ("name = \"x\"\nbackend = \"kubernetes\"", "profiles[0].backend"), ("name = \"x\"\ngroups = [\"a b\"]", "profiles[0].groups"),
        ("name = \"x\"\npython_env = \"relative\"", "profiles[0].python_env"), ("name = \"x\"\ncolour = \"red\"", "colour"),
        ("name = \"x\"\n[profiles.slurm]\nextra_sbatch_options = [\"--uid=0\"]", "extra_sbatch_options"),
        ("name = \"x\"\n[profiles.limits]\nmemory_max = \"lots\"", "memory_max"),
        ("name = \"x\"\n[profiles.slurm]\nport_range = [30000, 30100]", "port_range"),   // the gate checks the site's range
        ("name = \"x\"\n[profiles.slurm]\nbin_dir = \"/opt/other\"", "bin_dir"),
    ])
    func hostile(entry: String, key: String) throws {
        let message = try #require(error(Self.site + "[[profiles]]\n" + entry + "\n"))
        #expect(message.contains(key), "\(message)")
    }

    @Test("two profiles of one name, or two defaults, are refused")
    func duplicates() {
        #expect(error(Self.site + Self.course + Self.course)?.contains("two profiles are named 'course'") == true)
        let second = Self.research.replacingOccurrences(of: "groups", with: "default = true\ngroups")
        #expect(error(Self.site + Self.course + second)?.contains("is the default already") == true)
    }

    @Test("a Slurm profile needs the site's [slurm]")
    func slurmNeedsSite() {
        let noSlurm = "[site]\npublic_url = \"https://jupyter.example.org\"\n"
        #expect(error(noSlurm + "[[profiles]]\nname = \"x\"\nbackend = \"slurm\"\n")?.contains("backend") == true)
    }
}
