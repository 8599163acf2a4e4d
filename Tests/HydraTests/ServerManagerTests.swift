@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import Synchronization
import Testing
@testable import HydraSystem

/// ServerManager acting on ServerLifecycle's decisions, with a stand-in backend: what each
/// decision makes it do (end, launch, wait, publish the token, remember the record), with a
/// real runtime folder, lock and home in a temporary folder. The backends' own observing and
/// acting is the integration tests' (real servers, real Slurm jobs).
@Suite("ServerManager: each decision acted on", .serialized)
final class ServerManagerTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-manager-\(UUID().uuidString)").path
    let uid: UInt32 = getuid() == 0 ? 20_000 : getuid()
    let webGID: UInt32 = getuid() == 0 ? (UserDatabase.group(named: "www-data")?.gid ?? 33) : getgid()
    var runtime: String { "\(base)/run/alice" }

    init() throws {
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(base)/home", withIntermediateDirectories: true)
        chown(runtime, uid, webGID)
        chmod(runtime, 0o2750)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    /// Says what the test wants it to see, and notes every call.
    final class Backend: ServerBackend {
        let sighting: ServerLifecycle.Sighting
        let queued: Bool
        let calls = Mutex<[String]>([])
        let patiences = Mutex<[Double]>([])

        init(_ sighting: ServerLifecycle.Sighting, queued: Bool = false) {
            (self.sighting, self.queued) = (sighting, queued)
        }

        var noted: [String] { calls.withLock { $0 } }
        func note(_ call: String) { calls.withLock { $0.append(call) } }

        func place(of record: ServerRecord) -> ServerPlace {
            record.job.map(ServerPlace.job) ?? .local(socket: "/run/hydra/alice/jupyter.sock", pid: record.pid ?? 0, supervisor: .detached)
        }
        func observe(_ record: ServerRecord?, in runtime: DirectoryHandle, patience: Double) -> ServerLifecycle.Sighting {
            note("observe")
            patiences.withLock { $0.append(patience) }
            return sighting
        }
        func launch(token: String, because reason: ServerLifecycle.LaunchReason, in runtime: DirectoryHandle) throws -> ServerRecord {
            note("launch: \(reason.rawValue)")
            return ServerRecord(.process(4242), token: token)
        }
        func waitForServer(_ record: ServerRecord, resumed: Bool, in runtime: DirectoryHandle) throws -> ServerWait {
            note(resumed ? "wait (resumed)" : "wait")
            guard queued else { return .serving(record) }
            return .queued(SlurmClient.Job(id: "42", state: "PENDING", reason: "Resources", node: "", startTime: "N/A", user: "alice", name: "hydra-alice"))
        }
        func cleanUp(record: ServerRecord?, in runtime: DirectoryHandle) throws { note("clean up") }
        func status(of record: ServerRecord?, in runtime: DirectoryHandle) -> ServerStatus {
            ServerStatus(user: "alice", running: false, summary: "test", activity: nil, server: .job(JobStatus(job: nil)))
        }
    }

    static let profiles = """
        [[profiles]]
        name = "course"
        default = true
        [[profiles]]
        name = "research"
        groups = ["research"]
        [profiles.limits]
        memory_max = "4G"
        """

    func manager(_ backend: Backend, profiles: String = "", groups: [String] = ["hydra"]) throws -> ServerManager {
        let config = try HydraConfig.parse("""
            [site]
            public_url = "http://localhost"
            [server]
            runtime_dir = "\(base)/run"
            runtime_dir_size = ""
            \(profiles)
            """, path: "hydra.toml")
        let account = PasswdEntry(name: "alice", uid: uid, gid: webGID, gecos: "", home: "\(base)/home", shell: "/bin/bash")
        let identity = LaunchIdentity(name: try UserName("alice"), account: account, groupNames: groups)
        return ServerManager(config: config, identity: identity) { _ in backend }
    }

    func writeRecord(_ record: ServerRecord) throws {
        try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: "\(runtime)/\(RuntimeDirectory.Entry.record)"))
    }
    var record: ServerRecord? {
        (try? Data(contentsOf: URL(fileURLWithPath: "\(runtime)/\(RuntimeDirectory.Entry.record)"))).flatMap { try? JSONDecoder().decode(ServerRecord.self, from: $0) }
    }
    var publishedToken: String? { try? String(contentsOfFile: "\(runtime)/\(RuntimeDirectory.Entry.loginToken)", encoding: .utf8) }

    @Test("no record: whatever is left is ended, a server launched and waited for, its record kept and its token published")
    func firstStart() throws {
        let backend = Backend(.noRecord)
        let report = try manager(backend).start()
        #expect(backend.noted == ["observe", "clean up", "launch: \(ServerLifecycle.LaunchReason.noServer.rawValue)", "wait"])
        #expect(report.outcome == .started && report.place == .local(socket: "/run/hydra/alice/jupyter.sock", pid: 4242, supervisor: .detached))
        #expect(record?.pid == 4242 && record?.token == report.token && publishedToken == report.token)
        #expect(Secret.isLowercaseHex(report.token.utf8, count: 64))
    }

    @Test("an answering server is kept: nothing ended or launched, its token published")
    func reuse() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64)))
        let backend = Backend(.process(.serving))
        let report = try manager(backend).start()
        #expect(backend.noted == ["observe"])
        #expect(report.outcome == .reused && report.token == String(repeating: "c", count: 64) && publishedToken == report.token)
    }

    @Test("a stale record: the old server is ended and a new one, with a new token, takes its place")
    func replace() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64)))
        let backend = Backend(.process(.init(alive: false, ownedByPerson: false, startedByHydra: false, answers: false)))
        let report = try manager(backend).start()
        #expect(backend.noted == ["observe", "clean up", "launch: \(ServerLifecycle.LaunchReason.processEnded.rawValue)", "wait"])
        #expect(report.token != String(repeating: "c", count: 64) && record?.pid == 4242)
    }

    @Test("a queued job is waited on, not submitted again, and the answer says it waits")
    func resumeQueued() throws {
        try writeRecord(ServerRecord(.job(JobServer(job: "42", pin: String(repeating: "5a", count: 32))), token: String(repeating: "d", count: 64)))
        let backend = Backend(.job(.init(phase: .waiting, endpoint: .notYet, answers: false)), queued: true)
        let report = try manager(backend).start()
        #expect(backend.noted == ["observe", "wait (resumed)"])
        #expect(report.outcome == .waiting && report.queued?.id == "42" && report.place == .job(JobServer(job: "42", pin: String(repeating: "5a", count: 32))) && publishedToken == nil)
    }

    @Test("threat: a record that does not decode (forged, or half written) is never trusted: a new server")
    func unreadableRecord() throws {
        try "{\"pid\": \"1\"".write(toFile: "\(runtime)/\(RuntimeDirectory.Entry.record)", atomically: true, encoding: .utf8)
        let backend = Backend(.noRecord)
        #expect(try manager(backend).start().outcome == .started)
        #expect(backend.noted.contains("launch: \(ServerLifecycle.LaunchReason.noServer.rawValue)"))
    }

    @Test("a stop ends the server, forgets the record and the token, and says whether one ran")
    func stop() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64)))
        try "c".write(toFile: "\(runtime)/\(RuntimeDirectory.Entry.loginToken)", atomically: true, encoding: .utf8)
        let backend = Backend(.process(.serving))
        #expect(try manager(backend).stop())
        #expect(backend.noted == ["observe", "clean up"] && record == nil && publishedToken == nil)
        #expect(try !manager(Backend(.noRecord)).stop())
    }

    @Test("a start gives a live server that answers late time to answer before ending it; a stop does not wait for an answer")
    func answerPatience() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64)))
        let backend = Backend(.process(.serving))
        _ = try manager(backend).start()
        _ = try manager(backend).stop()
        #expect(backend.patiences.withLock { $0 } == [ServerLifecycle.answerPatienceSeconds, 0])
        #expect(ServerLifecycle.answerPatienceSeconds >= 10)
    }

    @Test("another profile chosen: the running server is ended and one of the chosen profile started, and the record says which")
    func profileChanged() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64), profile: "course"))
        let backend = Backend(.process(.serving))
        let report = try manager(backend, profiles: Self.profiles, groups: ["hydra", "research"]).start(profile: "research")
        #expect(backend.noted == ["observe", "clean up", "launch: \(ServerLifecycle.LaunchReason.profileChanged.rawValue)", "wait"])
        #expect(report.profile == "research" && record?.profile == "research")
        // A later start without a choice (a visit's sync) keeps it.
        let again = Backend(.process(.serving))
        #expect(try manager(again, profiles: Self.profiles, groups: ["hydra", "research"]).start().outcome == .reused)
        #expect(again.noted == ["observe"])
    }

    @Test("unit and check show the recorded server's profile, else the person's default (not the site's [limits])")
    func currentProfileConfig() throws {
        let profiles = Self.profiles.replacingOccurrences(of: "\"4G\"", with: "\"6G\"")
        let manager = try manager(Backend(.noRecord), profiles: profiles, groups: ["hydra", "research"])
        let course = manager.config.profiles[0].limits.memoryMaxBytes
        #expect(course != 6 << 30 && manager.currentProfileConfig.limits.defaults.memoryMaxBytes == course)
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64), profile: "research"))
        #expect(manager.currentProfileConfig.limits.defaults.memoryMaxBytes == 6 << 30)
    }

    @Test("a start without a choice (a visit's sync) never replaces a server, also one of a profile since removed")
    func noChoiceKeepsTheServer() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64), profile: "removed"))
        let backend = Backend(.process(.serving))
        let report = try manager(backend, profiles: Self.profiles, groups: ["hydra", "research"]).start()
        #expect(report.outcome == .reused && backend.noted == ["observe"] && record?.profile == "removed")
    }

    @Test("threat: a profile the person's groups do not allow is refused before anything is observed, ended or started")
    func profileNotAllowed() throws {
        try writeRecord(ServerRecord(.process(77), token: String(repeating: "c", count: 64), profile: "course"))
        let backend = Backend(.process(.serving))
        #expect(throws: ServerFailure.profileNotAllowed(try UserName("alice"), profile: "research")) {
            try self.manager(backend, profiles: Self.profiles).start(profile: "research")
        }
        #expect(backend.noted.isEmpty && record?.profile == "course")
    }

    @Test("threat: a runtime folder someone else owns is refused before anything is observed")
    func foreignRuntimeFolder() throws {
        chown(runtime, uid + 1, webGID)
        let backend = Backend(.noRecord)
        #expect(throws: ServerFailure.self) { try self.manager(backend).start() }
        #expect(backend.noted.isEmpty)
    }
}
