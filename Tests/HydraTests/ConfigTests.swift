@testable import HydraSite
@testable import HydraServers
import Foundation
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("Configuration: typed, strict, and every error located")
struct ConfigTests {
    static let minimal = "[site]\npublic_url = \"https://jupyter.example.org\"\n"

    func parseError(_ text: String) -> ConfigError? {
        do {
            _ = try HydraConfig.parse(text, path: "/etc/hydra/hydra.toml")
            return nil
        } catch {
            return error
        }
    }

    @Test("the documented example file parses, and its values are the defaults")
    func exampleParses() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../etc/hydra.toml")
        let example = try HydraConfig.parse(String(contentsOf: url, encoding: .utf8), path: "etc/hydra.toml")
        var defaults = try HydraConfig.parse(Self.minimal, path: "minimal")
        defaults.site.publicURL = example.site.publicURL
        #expect(example == defaults)
    }

    @Test("defaults are safe: no local UIDs, privileged groups listed, root denied")
    func safeDefaults() throws {
        let config = try HydraConfig.parse(Self.minimal, path: "x")
        #expect(config.accounts.localUIDFallback == false)
        #expect(config.accounts.deny.contains("root"))
        #expect(config.accounts.privilegedGroups.contains("sudo"))
        #expect(config.courses.isEmpty)
    }

    @Test("an unknown key is an error naming its line")
    func unknownKey() {
        let error = parseError(Self.minimal + "\n[ldap]\nuri = \"ldap://x/\"\nbase = \"dc=x\"\nbsae = \"typo\"\n")
        #expect(error == .unknownKey(path: "/etc/hydra/hydra.toml", line: 7, key: "ldap.bsae"))
    }

    @Test("an unknown section is an error")
    func unknownSection() {
        #expect(parseError(Self.minimal + "[serverr]\nx = 1\n") == .unknownKey(path: "/etc/hydra/hydra.toml", line: 3, key: "serverr"))
    }

    @Test("a wrong type names the key, the line and both types")
    func wrongType() {
        let error = parseError(Self.minimal + "[server]\nmax_concurrent_starts = \"4\"\n")
        #expect(error == .wrongType(path: "/etc/hydra/hydra.toml", line: 4, key: "server.max_concurrent_starts", expected: "an integer", found: "a string"))
    }

    @Test("a syntax error carries line and column")
    func syntax() {
        guard case .syntax(_, let line, _, _) = parseError("[site]\npublic_url = = 1\n") else {
            Issue.record("not a syntax error")
            return
        }
        #expect(line == 2)
    }

    @Test("courses: array of tables, each checked, their lines found")
    func courses() throws {
        let text = Self.minimal + "[[courses]]\nrepo = \"/srv/a.git\"\nfolder = \"a\"\n[[courses]]\nrepo = \"/srv/b.git\"\nfolder = \"a/../../x\"\n"
        #expect(parseError(text) == .invalidValue(path: "/etc/hydra/hydra.toml", line: 8, key: "courses[1].folder",
                                                  reason: "must be a relative path inside the home, without '..'"))
        let good = try HydraConfig.parse(Self.minimal + "[[courses]]\nrepo = \"/srv/a.git\"\nfolder = \"tutorials\"\n", path: "x")
        #expect(good.courses == [HydraConfig.Course(repo: "/srv/a.git", branch: "main", folder: "tutorials")])
    }

    @Test("hostile values are refused", arguments: [
        "[server]\nruntime_dir = \"run/hydra\"\n",
        "[server]\nruntime_dir = \"/run/../etc\"\n",
        "[server]\ncommand = []\n",
        "[accounts]\ngroup = \"root;id\"\n",
        "[accounts]\nuid_min = 0\n",
        "[accounts]\nlocal_uid_min = 100\n",
        "[ldap]\nuri = \"ldap://x/\"\n",
        "[ldap]\nuid_attribute = \"uid)(x=*\"\n",
        "[ldap]\nbind_dn = \"cn=x\"\n",
        "[sync]\ndata_link_name = \"../../x\"\n",
        "[site]\nkerberos_realm = 5\n",
    ])
    func hostile(_ extra: String) {
        let text = extra.hasPrefix("[site]") ? "[site]\npublic_url = \"https://x.org\"\n" + extra.dropFirst(7) : Self.minimal + extra
        #expect(parseError(text) != nil)
    }

    @Test("every error maps to exit status 78")
    func exitStatus() {
        #expect(ConfigError.missing(path: "x").exitStatus == .configurationError)
        #expect(ExitStatus.configurationError.rawValue == 78)
    }

    @Test("--config is refused through sudo")
    func configOptionUnderSudo() throws {
        #expect(throws: ConfigError.self) { try HydraConfig.path(option: "/tmp/x", environment: ["SUDO_USER": "www-data"]) }
        #expect(try HydraConfig.path(option: nil, environment: ["SUDO_USER": "www-data"]) == HydraConfig.defaultPath)
    }
}

@Suite("Exit statuses")
struct ExitStatusTests {
    @Test("each status has its own code and a summary")
    func distinct() {
        #expect(Set(ExitStatus.allCases.map(\.rawValue)).count == ExitStatus.allCases.count)
        #expect(ExitStatus.allCases.allSatisfy { !$0.summary.isEmpty })
    }

    /// The statuses the front turns into pages (and admins' scripts read): an account that is
    /// not ready is refused (77, "run addldapuser"), a busy or slow server is worth a retry
    /// (75), a broken start is a system error (71).
    @Test("each cause of a failed start has the status the front and the README promise",
          arguments: [
              (ServerFailure.runsAsRoot, HydraSystem.ExitStatus.refused),
              (.unknownUID(4242), .refused),
              (.notInGroup(try! UserName("ann"), group: "hydra"), .refused),
              (.runtimeDirectoryNotReady(path: "/run/hydra/ann", person: try! UserName("ann"), webGroup: "www-data"), .refused),
              (.lockTaken(path: "/run/hydra/ann/lock", seconds: 60, person: try! UserName("ann")), .busy),
              (.tooManyProcesses(try! UserName("ann"), tasksMax: 150), .temporaryFailure),
              (.userManagerNotRunning(try! UserName("ann"), bus: "/run/user/70001/bus"), .temporaryFailure),
              (.startTimedOut(seconds: 60, logTail: ""), .temporaryFailure),
              (.homeFull(try! UserName("ann"), home: "/home/ann", availableKiB: 12), .homeFull),
              (.systemdRunFailed(unit: "hydra-jupyter-ann.service", error: "x"), .systemError),
              (.noMainProcess(unit: "hydra-jupyter-ann.service", logTail: ""), .systemError),
              (.exitedDuringStartup(exitStatus: 1, logTail: ""), .systemError),
          ])
    func serverFailures(failure: ServerFailure, status: HydraSystem.ExitStatus) {
        #expect(failure.exitStatus == status)
        #expect(!failure.description.isEmpty)
    }

    @Test("a child's end reads as a shell says it, never as a raw wait status")
    func exitedDuringStartupSaysHow() {
        #expect(ServerFailure.exitedDuringStartup(exitStatus: 137, logTail: "killed").description
                == "the notebook server exited during start-up (exit status 137); its log ends:\nkilled")
        #expect(ServerFailure.exitedDuringStartup(exitStatus: nil, logTail: "").description.contains("(it is gone)"))
    }
}
