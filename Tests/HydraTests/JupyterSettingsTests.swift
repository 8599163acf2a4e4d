import Foundation
import Testing
@testable import HydraAccounts
@testable import HydraSite
@testable import HydraSystem

/// The Jupyter configuration in a home: the shipped Python, embedded byte for byte, and the
/// site's values as JSON (Tests/Python/test_jupyter_config.py checks what Jupyter makes of them).
@Suite("Jupyter settings: the shipped Python and the site's values beside it")
struct JupyterSettingsTests {
    static let shippedFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/HydraAccounts/Home/jupyter_config.py")
    /// The values the Python test loads the configuration with.
    static let pythonTestSample = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Python/jupyter_site.json")

    func settings(_ toml: String) throws -> JupyterSettings {
        JupyterSettings(config: try HydraConfig.parse(toml, path: "/etc/hydra/hydra.toml"))
    }

    func decoded(_ settings: JupyterSettings) throws -> JupyterSettings.Values {
        try JSONDecoder().decode(JupyterSettings.Values.self, from: Data(try settings.valuesFileContents))
    }

    @Test("the programs carry jupyter_config.py byte for byte")
    func embeddedFile() throws {
        #expect(JupyterSettings.fileContents == (try String(contentsOf: Self.shippedFile, encoding: .utf8)))
    }

    @Test("an https site with the defaults: the values of hydra.toml, in the JSON the Python reads (its test's sample)")
    func httpsDefaults() throws {
        let settings = try settings("[site]\npublic_url = \"https://jupyter.example.org/\"\n")
        #expect(try settings.valuesFileContents == Array(try Data(contentsOf: Self.pythonTestSample)))
        let values = try decoded(settings)
        #expect(values == settings.values)
        #expect(values == JupyterSettings.Values(host: "jupyter.example.org", https: true, idleTimeoutSeconds: 7200,
                                                 kernelIdleTimeoutSeconds: 3600, kernelCullIntervalSeconds: 300,
                                                 kernelExtension: KernelLimitHelp.moduleName, logMaxBytes: 1 << 20))
    }

    @Test("an http site, its own timeouts and log cap")
    func httpSite() throws {
        let values = try decoded(try settings("""
            [site]
            public_url = "http://hydra.internal:8080"
            [server]
            idle_timeout_seconds = 0
            kernel_idle_timeout_seconds = 45
            log_max_bytes = 65536
            """))
        #expect(values.host == "hydra.internal")
        #expect(values.https == false)
        #expect(values.idleTimeoutSeconds == 0)
        #expect(values.kernelIdleTimeoutSeconds == 45)
        #expect(values.kernelCullIntervalSeconds == 45)
        #expect(values.logMaxBytes == 65536)
    }

    @Test("kernels are checked within their idle timeout, at most every 5 minutes; 0 culls none",
          arguments: [(0, 300), (1, 1), (45, 45), (300, 300), (3600, 300)])
    func cullInterval(timeout: Int, interval: Int) throws {
        let values = try decoded(try settings(ConfigTests.minimal + "[server]\nkernel_idle_timeout_seconds = \(timeout)\n"))
        #expect(values.kernelIdleTimeoutSeconds == timeout)
        #expect(values.kernelCullIntervalSeconds == interval)
    }

    @Test("the JSON has exactly the keys the Python reads, and the same bytes for the same values")
    func keysMatchThePython() throws {
        let settings = try settings(ConfigTests.minimal)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(try settings.valuesFileContents)) as? [String: Any])
        let read = try Regex(#"site\["([a-z_]+)"\]"#)
        let keys = Set(JupyterSettings.fileContents.matches(of: read).map { String($0.output[1].substring!) })
        #expect(Set(object.keys) == keys)
        #expect(JupyterSettings.fileContents.contains("\"\(JupyterSettings.valuesFileName)\""))
        #expect(try settings.valuesFileContents == (try self.settings(ConfigTests.minimal).valuesFileContents))
    }

    func status(_ path: String) throws -> FileStatus {
        try #require(try FileStatus.ofEntry(path))
    }

    @Test("prepare writes both files, 0600, and rewrites only what changed")
    func prepareWritesBoth() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-jupyter-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let account = PasswdEntry(name: "alice", uid: getuid(), gid: getgid(), gecos: "", home: home, shell: "/bin/bash")
        let config = try HydraConfig.parse(ConfigTests.minimal, path: "x")
        let setup = HomeSetup(config: config, account: account)
        try setup.prepare()
        let python = setup.jupyterConfigPath, json = "\(setup.hydraDir)/\(JupyterSettings.valuesFileName)"
        #expect(try String(contentsOfFile: python, encoding: .utf8) == JupyterSettings.fileContents)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: json))) == (try JupyterSettings(config: config).valuesFileContents))
        for path in [python, json] {
            #expect(try status(path).permissions == 0o600)
        }

        let pythonInode = try status(python).inode
        let jsonInode = try status(json).inode
        try setup.prepare()
        #expect(try status(python).inode == pythonInode)
        #expect(try status(json).inode == jsonInode)

        var changed = config
        changed.server.kernelIdleTimeoutSeconds = 0
        try HomeSetup(config: changed, account: account).prepare()
        #expect(try status(python).inode == pythonInode)
        #expect(try status(json).inode != jsonInode)
        let written = try JSONDecoder().decode(JupyterSettings.Values.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(written.kernelIdleTimeoutSeconds == 0)
    }
}
