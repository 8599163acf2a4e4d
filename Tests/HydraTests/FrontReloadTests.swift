@testable import HydraSite
import Foundation
import HydraFastCGI
import Logging
import Testing
@testable import HydraFront

/// The front as a daemon (hydra-cgi --socket behind mod_proxy_fcgi) reads hydra.toml again when
/// the file changes, and answers "hydra is not available" while it does not load, without
/// exiting. The configuration must be a root-owned file in root-owned folders (TrustedFile), so
/// this needs root: under /run, not /tmp (a folder anyone may write in is not trusted).
@Suite("The front daemon reads hydra.toml again when it changes", .enabled(if: getuid() == 0, "hydra.toml must be root's"))
final class FrontReloadTests {
    let folder = "/run/hydra-front-reload-\(UUID().uuidString)"
    var path: String { "\(folder)/hydra.toml" }

    init() throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// As an admin's editor or the tests do: a new file renamed over the old one.
    func write(_ text: String) throws {
        try text.write(toFile: "\(path).new", atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(path).new")
        #expect(rename("\(path).new", path) == 0)
    }

    func config(idleSeconds: Int) -> String {
        "[site]\npublic_url = \"https://jupyter.example.org\"\n[server]\nidle_timeout_seconds = \(idleSeconds)\n"
    }

    func healthStatus(_ front: ReloadingFront) -> String {
        let answer = front.answer(FastCGI.Request(parameters: ["REQUEST_URI": "/hydra/health", "REQUEST_METHOD": "GET"], body: []))
        return String(decoding: answer.bytes.prefix(12), as: UTF8.self)
    }

    @Test("an edit takes effect at the next request; a broken file is answered 'not available' until it is fixed")
    func reloadsOnChange() throws {
        try write(config(idleSeconds: 30))
        let front = ReloadingFront(path: path, logger: Logger(label: "test"))
        #expect(front.current()?.config.server.idleTimeoutSeconds == 30)
        #expect(healthStatus(front) == "Status: 200 ")

        try write(config(idleSeconds: 45))
        #expect(front.current()?.config.server.idleTimeoutSeconds == 45, "the new file, without a restart")

        try write("[site]\npublic_url = \"https://jupyter.example.org\"\n[server]\nidle_timeout_secondss = 5\n")
        #expect(front.current() == nil)
        #expect(healthStatus(front) == "Status: 500 ")
        #expect(String(decoding: front.answer(FastCGI.Request(parameters: ["REQUEST_URI": "/"], body: [])).bytes, as: UTF8.self)
            .contains("hydra is not available"))

        try write(config(idleSeconds: 60))
        #expect(front.current()?.config.server.idleTimeoutSeconds == 60, "fixing the file is enough")

        try FileManager.default.removeItem(atPath: path)
        #expect(front.current() == nil, "a missing file is no configuration")
    }

    @Test("threat: a configuration someone else may write is not read, also after a change")
    func untrustedChangeIsNotRead() throws {
        try write(config(idleSeconds: 30))
        let front = ReloadingFront(path: path, logger: Logger(label: "test"))
        #expect(front.current() != nil)
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: path)
        #expect(front.current() == nil, "a world-writable hydra.toml must not be served from")
    }
}
