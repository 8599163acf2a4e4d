@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import HydraTesting
import Logging
import Testing
@testable import HydraFront
@testable import HydraSystem

/// Front.visit, exit by exit, with fake helpers and a fake user database: which page a person
/// gets, and which helpers ran. The runtime folders are real (a temporary runtime_dir); the
/// person's runtime directory belongs to an account of the test's choosing (root can chown).
/// Paths with a running server are the integration tests' (test_front.py): they need the
/// person's own listening process.
@Suite("Front.visit: every exit", .serialized)
final class FrontVisitTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-visit-\(UUID().uuidString)").path
    /// The person's UID and the web server's GID, as the runtime directory carries them.
    let uid: UInt32 = getuid() == 0 ? 20_000 : getuid()
    let webGID: UInt32 = getuid() == 0 ? 4242 : getgid()
    var runtime: String { "\(base)/run" }

    init() throws {
        try FileManager.default.createDirectory(atPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    var alice: PasswdEntry { PasswdEntry(name: "alice", uid: uid, gid: webGID, gecos: "", home: "\(base)/home", shell: "/bin/bash") }

    func accounts(_ users: [PasswdEntry], research: [String] = []) -> FakeAccounts {
        FakeAccounts(users: users, groups: [GroupEntry(name: "hydra", gid: 5000, members: users.map(\.name)),
                                            GroupEntry(name: "www-data", gid: webGID, members: []),
                                            GroupEntry(name: "research", gid: 5001, members: research)])
    }

    func front(_ helpers: FakeHelpers, users: [PasswdEntry] = [], minimumMemory: String = "", backend: String = "local",
               profiles: String = "", research: [String] = []) throws -> Front {
        let config = try HydraConfig.parse("""
            [site]
            public_url = "http://localhost"
            [accounts]
            uid_min = 1000
            [server]
            runtime_dir = "\(runtime)"
            runtime_dir_size = ""
            start_min_available_memory = "\(minimumMemory)"
            max_concurrent_starts = 1
            backend = "\(backend)"
            [limits]
            supervisor = "detached"
            [slurm]
            \(profiles)
            """, path: "hydra.toml")
        return Front(config: config, logger: Logger(label: "test"), helpers: helpers, accounts: accounts(users, research: research))
    }

    /// The runtime directory addldapuser would have left for `alice`.
    func readyRuntimeDirectory() {
        let path = "\(runtime)/alice"
        mkdir(path, 0o700)
        chown(path, uid, webGID)
        chmod(path, 0o2750)
    }

    func visit(_ front: Front, as user: String = "alice", query: String = "") -> (status: Int, page: String, headers: [String: String]) {
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": query.isEmpty ? "/" : "/?\(query)", "QUERY_STRING": query,
                                                              "REQUEST_METHOD": "GET", "REMOTE_USER": user]))
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name, default: ""] += value + "\n" }
        return (response.status, String(decoding: response.body, as: UTF8.self), headers)
    }

    @Test func loggedOutGetsItsPageAndForgetsTheShortcuts() throws {
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers), query: "logged_out=1")
        #expect(answer.status == 200 && answer.page.contains("You are logged out"))
        #expect(answer.headers["Set-Cookie"]?.contains("hydra-recent=; ") == true)
        #expect(helpers.calls.isEmpty)
    }

    @Test func aDeniedNameIsRefusedWithoutAnyHelper() throws {
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers), as: "root")
        #expect(answer.status == 403 && answer.page.contains("not available for this account"))
        #expect(helpers.calls.isEmpty)
    }

    @Test func anExistingSystemAccountIsRefusedWithoutAnyHelper() throws {
        let helpers = FakeHelpers()
        let system = PasswdEntry(name: "backup", uid: 34, gid: 34, gecos: "", home: "/var/backups", shell: "/usr/sbin/nologin")
        #expect(visit(try front(helpers, users: [system]), as: "backup").status == 403)
        #expect(helpers.calls.isEmpty)
    }

    @Test func aFirstVisitCreatesTheAccountStartsTheServerAndLogsIn() throws {
        let helpers = FakeHelpers(start: .started(token: String(repeating: "7", count: 64)))
        let answer = visit(try front(helpers))
        #expect(helpers.calls == ["addldapuser alice", "start alice"])
        #expect(answer.status == 200 && answer.page.contains(#"name="password" value="\#(String(repeating: "7", count: 64))""#))
        #expect(answer.page.contains(#"action="/user/alice/login?next="#))
        #expect(answer.headers["Set-Cookie"]?.contains("hydra-recent=1; ") == true)
    }

    @Test func aSlurmJobsEndpointIsWrittenForTheGateFromTheHelpersAnswerAndNothingElse() throws {
        let token = String(repeating: "7", count: 64)
        let pin = String(repeating: "5a", count: 32)
        let job = JobServer(job: "42", node: "node1", address: "169.254.1.2", port: 21000, pin: pin)
        let answer = visit(try front(FakeHelpers(start: .answer(.done, LaunchReport.fake(token: token, place: .job(job)))), backend: "slurm"))
        #expect(answer.status == 200 && answer.page.contains(#"action="/user/alice/login?next="#))
        let endpoint = "\(runtime)/\(RuntimeDirectory.frontDirectoryName)/endpoints/alice"
        #expect(try String(contentsOfFile: endpoint, encoding: .utf8) == "42 169.254.1.2 21000 \(pin)\n")
        try FileManager.default.removeItem(atPath: endpoint)
        // An answer without a pin (an older ipynb-launch's job, served in clear): never an endpoint.
        var clear = job
        clear.pin = nil
        #expect(visit(try front(FakeHelpers(start: .answer(.done, LaunchReport.fake(token: token, place: .job(clear)))), backend: "slurm")).status == 500)
        #expect(!FileManager.default.fileExists(atPath: endpoint))
        // A local server's answer under the Slurm backend names no job: an incident, and no endpoint.
        let local = visit(try front(FakeHelpers(start: .started(token: token)), backend: "slurm"))
        #expect(local.status == 500 && !FileManager.default.fileExists(atPath: endpoint))
    }

    @Test func aQueuedJobGetsTheStartingPageWithItsStateAndReasonAndNoEndpoint() throws {
        let job = SlurmClient.Job(id: "42", state: "PENDING", reason: "Resources", node: "", startTime: "2026-12-02T10:42:00", user: "alice", name: "hydra-alice")
        let queued = LaunchReport.fake(token: String(repeating: "7", count: 64), outcome: .waiting, place: .job(JobServer(job: "42")), queued: job)
        let answer = visit(try front(FakeHelpers(start: .answer(.waiting, queued)), backend: "slurm"))
        #expect(answer.status == 200 && answer.headers["Refresh"] == "5\n")
        #expect(answer.page.contains("its job 42 is pending (all of the cluster&#39;s nodes are busy; reason: Resources)")
                || answer.page.contains("its job 42 is pending (all of the cluster&#x27;s nodes are busy; reason: Resources)"))
        #expect(answer.page.contains("Slurm expects it to start at 2026-12-02 10:42:00."))
        #expect(!answer.page.contains("7777") && !FileManager.default.fileExists(atPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)/endpoints/alice"))
    }

    @Test func aReadyAccountOnlyStartsTheServer() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        #expect(visit(try front(helpers, users: [alice])).status == 200)
        #expect(helpers.calls == ["start alice"])
    }

    @Test(arguments: [(HydraSystem.ExitStatus.refused, 403), (.invalidName, 403), (.ldapUnavailable, 503), (.temporaryFailure, 503),
                      (.homeFull, 507), (.internalError, 500), (.systemError, 500)])
    func whenAddLDAPUserFailsThePersonGetsAPageForWhy(_ failure: (HydraSystem.ExitStatus, Int)) throws {
        let helpers = FakeHelpers(addLDAPUser: .failure(failure.0, "xyzzy: the helper said so"))
        let answer = visit(try front(helpers))
        #expect(answer.status == failure.1)
        #expect(helpers.calls == ["addldapuser alice"])
        #expect(!answer.page.contains("xyzzy"))  // a helper's message is for the admin's log
        if failure.1 == 503 { #expect(answer.headers["Retry-After"] != nil) }
    }

    @Test(arguments: [(HydraSystem.ExitStatus.refused, 403), (.homeFull, 507), (.temporaryFailure, 503), (.internalError, 500)])
    func whenTheStartFailsThePersonGetsAPageForWhy(_ failure: (HydraSystem.ExitStatus, Int)) throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers(start: .failure(failure.0, "xyzzy: the helper said so"))
        #expect(visit(try front(helpers, users: [alice])).status == failure.1)
        #expect(helpers.calls == ["start alice"])
    }

    @Test func aStartWithoutAUsableTokenIsAnIncident() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers(start: .answer(.done, LaunchReport.fake(token: "short")))
        let answer = visit(try front(helpers, users: [alice]))
        #expect(answer.status == 500 && answer.page.contains("incident"))
    }

    @Test func aStartTheFrontStopsWaitingForShowsTheStartingPage() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers(start: HelperCalls.Outcome(status: -1, output: [], abandoned: true))
        let answer = visit(try front(helpers, users: [alice]))
        #expect(answer.status == 200 && answer.page.contains("Starting your notebook server") && answer.headers["Refresh"] != nil)
    }

    @Test func aPersonWhoHoldsTheirOwnLockGetsTheBusyPageAndTheStartSlotIsFreeAgain() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers(start: .failure(.busy, "the lock stayed taken for 3 s"))
        let front = try front(helpers, users: [alice])
        let answer = visit(front)
        #expect(answer.status == 200 && answer.page.contains("Your notebook server is busy") && answer.headers["Refresh"] == "5\n")
        #expect(helpers.calls == ["start alice"])
        // The one start slot (max_concurrent_starts = 1) was hers only while the helper ran.
        #expect(try front.gate.startSlot() != nil)
    }

    /// A visit while the test holds one of the front's locks: the starting page, no helper.
    func visitWhileHolding(_ lock: (Front) throws -> FileLock?, says text: String) throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let front = try front(helpers, users: [alice])
        let held = try #require(try lock(front))
        let answer = visit(front)
        withExtendedLifetime(held) {}
        #expect(answer.status == 200 && answer.page.contains(text) && answer.headers["Refresh"] != nil)
        #expect(helpers.calls.isEmpty)
    }

    @Test func anotherRequestOfThePersonUnderWayGetsTheStartingPageAndNoHelper() throws {
        try visitWhileHolding({ try $0.gate.userTurn(try UserName("alice")) }, says: "Your notebook server is starting")
    }

    @Test func everyStartSlotTakenGetsTheStartingPage() throws {
        try visitWhileHolding({ try $0.gate.startSlot() }, says: "Many notebook servers are starting")
    }

    @Test func noMemoryForAnotherServerGetsTheNoRoomPageAndStartsNothing() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers, users: [alice], minimumMemory: "1T"))
        #expect(answer.status == 503 && answer.page.contains("No room for another notebook server"))
        #expect(answer.headers["Retry-After"] != nil)
        #expect(helpers.calls.isEmpty)
    }
}
