@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import HydraTesting
import Logging
import Testing
@testable import HydraFront
@testable import HydraSystem

/// /hydra/admin, its Stop button and /hydra/metrics, with fake helpers and accounts: who gets
/// in, what the XSRF check refuses, and that a refusal runs no helper. The servers it lists and
/// the metrics' counts are the integration tests' (test_admin.py): they need real servers and
/// a running hydra-gate.
@Suite("The admin page and the metrics: who may, and the Stop form", .serialized)
final class AdminTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-admin-\(UUID().uuidString)").path
    var runtime: String { "\(base)/run" }

    init() throws {
        try FileManager.default.createDirectory(atPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    func person(_ name: String, uid: UInt32) -> PasswdEntry {
        PasswdEntry(name: name, uid: uid, gid: uid, gecos: "", home: "\(base)/\(name)", shell: "/bin/bash")
    }

    func front(_ helpers: FakeHelpers = FakeHelpers()) throws -> Front {
        let config = try HydraConfig.parse("""
            [site]
            public_url = "http://localhost"
            [server]
            runtime_dir = "\(runtime)"
            runtime_dir_size = ""
            [admin]
            users = ["carol"]
            group = "staff"
            [[courses]]
            repo = "https://example.org/course.git"
            folder = "tutorials"
            """, path: "hydra.toml")
        let users = [person("carol", uid: 30_001), person("alice", uid: 30_002), person("bob", uid: 30_003), person("dora", uid: 30_004)]
        let accounts = FakeAccounts(users: users, groups: [GroupEntry(name: "hydra", gid: 5000, members: ["alice", "bob", "dora"]),
                                                           GroupEntry(name: "staff", gid: 5001, members: ["dora"])])
        return Front(config: config, logger: Logger(label: "test"), helpers: helpers, accounts: accounts)
    }

    func ask(_ front: Front, _ path: String, as user: String?, method: String = "GET", cookie: String = "",
             form: String? = nil, origin: String? = "http://localhost", referer: String? = nil) -> (status: Int, page: String, headers: [(String, String)]) {
        let query = path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        var parameters = ["REQUEST_URI": path, "QUERY_STRING": query, "REQUEST_METHOD": method, "HTTP_COOKIE": cookie]
        if let user { parameters["REMOTE_USER"] = user }
        if form != nil { parameters["CONTENT_TYPE"] = "application/x-www-form-urlencoded" }
        if method == "POST", let origin { parameters["HTTP_ORIGIN"] = origin }
        if let referer { parameters["HTTP_REFERER"] = referer }
        let response = front.handle(FrontRequest(parameters: parameters, body: Array((form ?? "").utf8)))
        return (response.status, String(decoding: response.body, as: UTF8.self), response.headers)
    }

    /// The Stop form's token, as the admin page of `admin` carries it in each server's row (the
    /// rows need running servers: test_admin.py reads it from the page itself).
    func formToken(_ front: Front, as admin: String = "carol") throws -> String {
        let page = ask(front, "/hydra/admin", as: admin)
        #expect(page.status == 200 && !page.headers.contains { $0.0 == "Set-Cookie" })   // nothing a tossed cookie could stand in for
        let token = try front.forms.mint(.adminStop, for: try UserName(admin))
        #expect(token.wholeMatch(of: /[0-9]+\.[0-9a-f]{64}/) != nil)
        return token
    }

    @Test func adminsNamedOrInTheGroupGetThePageOthersGet403() throws {
        let front = try front()
        let carol = ask(front, "/hydra/admin", as: "carol")
        #expect(carol.status == 200 && carol.page.contains("Running servers: 0") && carol.page.contains("https://example.org/course.git"))
        #expect(carol.page.contains("<p class=\"muted\" id=\"version\">hydra \(try Changelog.topVersion())</p>"))
        #expect(ask(front, "/hydra/admin", as: "dora").status == 200)          // member of [admin] group
        let alice = ask(front, "/hydra/admin", as: "alice")
        #expect(alice.status == 403 && alice.page.contains("not one of this site's hydra administrators"))
        #expect(ask(front, "/hydra/admin", as: nil).status == 500)             // no sign-in configured at all
        #expect(ask(front, "/hydra/admin", as: "carol", method: "POST").status == 405)
    }

    @Test func theStopFormNeedsATokenMintedForThisAdminForgedCrossSitePostAndTossedCookie() throws {
        let helpers = FakeHelpers()
        let front = try front(helpers)
        let token = try formToken(front)
        // No token; a made-up one; the old cookie/field pair a page of another port could toss in.
        #expect(ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob").status == 403)
        #expect(ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob&_xsrf=\(Int(Date().timeIntervalSince1970)).\(String(repeating: "0", count: 64))").status == 403)
        #expect(ask(front, "/hydra/admin/stop", as: "carol", method: "POST", cookie: "hydra-admin-xsrf=\(String(repeating: "a", count: 32))",
                    form: "user=bob&_xsrf=\(String(repeating: "a", count: 32))").status == 403)
        // carol's token in another person's request: not an admin, and not minted for her either.
        #expect(ask(front, "/hydra/admin/stop", as: "alice", method: "POST", form: "user=bob&_xsrf=\(token)").status == 403)
        // Another admin's token is not carol's.
        let doras = try formToken(front, as: "dora")
        #expect(ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob&_xsrf=\(doras)").status == 403)
        #expect(helpers.calls.isEmpty)

        let stopped = ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob&_xsrf=\(token)")
        #expect(stopped.status == 303 && stopped.headers.contains { $0 == ("Location", "/hydra/admin?stopped=bob") })
        #expect(helpers.calls == ["stop bob"])
        #expect(ask(front, "/hydra/admin?stopped=bob", as: "carol").page.contains("The server of bob was stopped"))
    }

    @Test func theStopFormIsRefusedFromAnotherOriginOrPortAndTheAttemptIsAnIncident() throws {
        let helpers = FakeHelpers()
        let front = try front(helpers)
        let token = try formToken(front)
        for (origin, referer) in [("http://localhost:8000", nil), ("http://127.0.0.1", nil), ("https://localhost", nil), ("null", nil),
                                  ("http://localhost.evil.example", nil), (nil, "http://localhost:8000/stop.html"), (nil, nil)] as [(String?, String?)] {
            let answer = ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob&_xsrf=\(token)", origin: origin, referer: referer)
            #expect(answer.status == 403, "Origin \(origin ?? "-"), Referer \(referer ?? "-"): \(answer.status)")
        }
        #expect(helpers.calls.isEmpty)
        let incidents = front.incidents.recent(20)
        #expect(incidents.count == 7 && incidents.allSatisfy { $0.user == "carol" && $0.detail.contains("refused") })
        #expect(incidents.contains { $0.detail.contains("http://localhost:8000") })
        // From the site's own page, by Referer alone (a browser that sends no Origin), it works.
        let answer = ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=bob&_xsrf=\(token)", origin: nil,
                         referer: "http://localhost/hydra/admin")
        #expect(answer.status == 303 && helpers.calls == ["stop bob"])
    }

    @Test func aFormTokenExpiresAndDiesWithItsKey() throws {
        let front = try front()
        let carol = try UserName("carol")
        func refusal(_ token: String, now: Date = Date()) -> String? {
            front.forms.refusal(of: FrontRequest(parameters: ["HTTP_ORIGIN": "http://localhost", "CONTENT_TYPE": "application/x-www-form-urlencoded"],
                                                 body: Array("_xsrf=\(token)".utf8)), .adminStop, for: carol, now: now)
        }
        let old = try front.forms.mint(.adminStop, for: carol, now: Date(timeIntervalSinceNow: -Double(FormGuard.lifetimeSeconds) - 10))
        #expect(refusal(old)?.contains("expired") == true)
        let fresh = try front.forms.mint(.adminStop, for: carol)
        #expect(refusal(fresh) == nil)
        try FileManager.default.removeItem(atPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)/\(FormGuard.keyFileName)")
        #expect(refusal(fresh)?.contains("not made for carol") == true)   // a new key: the old page's form is void
        #expect(refusal(try front.forms.mint(.adminStop, for: carol)) == nil)
    }

    @Test func theSiteOriginIsWhatABrowserWritesInOrigin() {
        #expect(FormGuard.origin(of: "https://Jupyter.Example.org:443/") == "https://jupyter.example.org")
        #expect(FormGuard.origin(of: "http://localhost:80") == "http://localhost")
        #expect(FormGuard.origin(of: "http://localhost:8000/x?y") == "http://localhost:8000")
        #expect(FormGuard.origin(of: "http://user@localhost/") == nil)
        #expect(FormGuard.origin(of: "null") == nil)
        #expect(FormGuard.origin(of: "javascript://localhost") == nil)
    }

    @Test func theStopFormRefusesHostileAndSystemTargetsWithoutSudo() throws {
        let helpers = FakeHelpers()
        let front = try front(helpers)
        let token = try formToken(front)
        for target in ["root", "..%2Falice", "bob%0Aroot", "", "-rf"] {
            let answer = ask(front, "/hydra/admin/stop", as: "carol", method: "POST", form: "user=\(target)&_xsrf=\(token)")
            #expect(answer.status == 400 || answer.status == 403, "stop \(target): \(answer.status)")
        }
        #expect(helpers.calls.isEmpty)
    }

    @Test func incidentsAreListedEscapedNewestFirst() throws {
        let front = try front()
        front.incidents.record(.init(id: "0000aaaa", user: "alice", time: 1, detail: "first"))
        front.incidents.record(.init(id: "0000bbbb", user: "bob", time: 2, detail: "<script>alert(1)</script>"))
        let page = ask(front, "/hydra/admin", as: "carol").page
        #expect(!page.contains("<script>alert") && page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        let first = try #require(page.range(of: "0000bbbb")), second = try #require(page.range(of: "0000aaaa"))
        #expect(first.lowerBound < second.lowerBound)
    }

    @Test func aPersonIsToldOnceWhyTheirKernelDiedThenAgainAfterTheNextKill() throws {
        let front = try front()
        let alice = try UserName("alice")
        func reading(pid: Int32 = 4242, kills: Int, refusals: Int = 0) -> LimitEvents {
            LimitEvents(serverPID: pid, controlGroup: "/user.slice/hydra-jupyter-alice.service", oomKills: kills, taskLimitHits: refusals,
                        memoryMaxBytes: 384 << 20, tasksMax: 100)
        }
        #expect(front.limitNotice(alice, reading: nil) == nil)
        #expect(front.limitNotice(alice, reading: reading(kills: 0)) == nil)
        let first = try #require(front.limitNotice(alice, reading: reading(kills: 1)))
        let page = String(decoding: first.body, as: UTF8.self)
        #expect(first.status == 200 && page.contains("A kernel of yours was stopped") && page.contains("384 MiB"))
        #expect(front.limitNotice(alice, reading: reading(kills: 1)) == nil)                 // told once
        #expect(front.limitNotice(alice, reading: reading(kills: 2)) != nil)                 // a new kill
        #expect(front.limitNotice(alice, reading: reading(kills: 2, refusals: 1)).map { String(decoding: $0.body, as: UTF8.self) }?
            .contains("could not start more than 100 processes") == true)
        #expect(front.limitNotice(alice, reading: reading(pid: 5353, kills: 1)) != nil)      // another server: counted afresh
        #expect(front.limitNotice(try UserName("bob"), reading: reading(kills: 1)) != nil)   // each person their own
    }

    @Test func metricsSignedInAreForAdminsAndSayWhenTheGateIsDown() throws {
        let front = try front()
        #expect(ask(front, "/hydra/metrics", as: "alice").status == 403)
        // No hydra-gate in this test: an answer that says so, not an empty page.
        let down = ask(front, "/hydra/metrics", as: "carol")
        #expect(down.status == 503 && down.page.contains("hydra-gate is not answering"))
        #expect(ask(front, "/hydra/metrics", as: nil).status == 503)  // Apache let a scraper's address through
    }
}

@Suite("Monitoring: /proc, the incident log, events, [admin]")
struct MonitoringTests {
    @Test func statLineCountsFieldsFromTheLastParenthesis() throws {
        let line = "4242 (evil) (name 1 2) S 1 4242 4240 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 123456789 2048 18446744073709551615"
        let stat = try #require(ProcessTable.StatLine(line))
        #expect(stat == ProcessTable.StatLine("1 (x) S 1 4242 4240 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 123456789 2048 1"))
        #expect(stat.parent == 1 && stat.userTicks == 250 && stat.systemTicks == 50 && stat.residentPages == 2048)
        #expect(ProcessTable.StatLine("4242 (truncated) S 1 2") == nil)
    }

    @Test func aServersUsageIsItsProcessTreeKernelsInSessionsOfTheirOwnIncluded() {
        func process(_ pid: Int32, parent: Int32, _ command: String...) -> ProcessSample {
            ProcessSample(pid: pid, parentPID: parent, uid: 30_002, residentBytes: 100, cpuSeconds: 1, commandLine: command)
        }
        let table = [process(10, parent: 1, "jupyter-lab"), process(11, parent: 10, "python", "-m", "ipykernel_launcher", "-f", "k.json"),
                     process(12, parent: 11, "bash"), process(13, parent: 12, "python", "-m", "ipykernel_launcher"),
                     process(20, parent: 1, "sshd"), process(21, parent: 20, "python", "-m", "ipykernel_launcher")]
        let tree = ProcessTable.tree(of: 10, in: table)
        #expect(tree.map(\.pid).sorted() == [10, 11, 12, 13])
        #expect(tree.filter { ServerCensus.isKernel($0.commandLine) }.count == 2)
        #expect(ProcessTable.tree(of: 99, in: table).isEmpty)
    }

    @Test func heldFlocksAreCountedAndWaitersAreNot() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("locks-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            1: FLOCK  ADVISORY  WRITE 100 00:19:501 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 101 00:19:501 0 EOF
            2: FLOCK  ADVISORY  WRITE 102 00:19:502 0 EOF
            3: POSIX  ADVISORY  WRITE 103 00:19:503 0 EOF
            4: FLOCK  ADVISORY  WRITE 104 fd:01:999 0 EOF
            """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(ProcessTable.flocksHeld(onInodes: [501, 502, 503], locksFile: file) == 2)
        #expect(ProcessTable.flocksHeld(onInodes: [], locksFile: file) == 0)
        // This process's own lock, as the kernel lists it.
        let folder = try DirectoryHandle.open(FileManager.default.temporaryDirectory.path)
        let name = "held-\(UUID().uuidString)"
        let lock = try FileLock(name, in: folder)
        defer { try? FileManager.default.removeItem(atPath: "\(folder.path)/\(name)") }
        let inode = try #require(try folder.entryStatus(name)?.inode)
        #expect(withExtendedLifetime(lock) { ProcessTable.flocksHeld(onInodes: [inode]) } == 1)
    }

    @Test func theIncidentLogKeepsTheNewestAndStaysSmall() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("incidents-\(UUID().uuidString)").path
        defer { [path, path + ".1"].forEach { try? FileManager.default.removeItem(atPath: $0) } }
        let log = IncidentLog(path: path)
        let detail = String(repeating: "x", count: 2000)
        for index in 0..<300 { log.record(.init(id: "\(index)", user: "alice", time: Double(index), detail: detail)) }
        #expect(log.recent(3).map(\.id) == ["299", "298", "297"])
        let size = try #require(FileStatus.following(path)?.size)
        #expect(size <= IncidentLog.maximumBytes + 4096)
    }

    @Test func eventsSurviveTheLineTheyTravelOn() throws {
        let events: [SiteEvent] = [.visit(outcome: "autologin"), .start(outcome: "started", seconds: 1.5), .startDeferred,
                                   .helper(name: "addldapuser", exitStatus: 69), .courseSync(folder: "a\nb", ok: false),
                                   .accountCreated, .ldapUnavailable]
        for event in events {
            let line = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
            #expect(!line.contains("\n"))
            #expect(try JSONDecoder().decode(SiteEvent.self, from: Data(line.utf8)) == event)
        }
    }

    @Test func adminUsersMustBeAccountNames() throws {
        #expect(throws: ConfigError.self) { try HydraConfig.parse("[site]\npublic_url = \"http://x\"\n[admin]\nusers = [\"Root Admin\"]\n", path: "t") }
        #expect(throws: ConfigError.self) { try HydraConfig.parse("[site]\npublic_url = \"http://x\"\n[admin]\nuser = [\"carol\"]\n", path: "t") }
        let config = try HydraConfig.parse("[site]\npublic_url = \"http://x\"\n[admin]\nusers = [\"carol\"]\ngroup = \"staff\"\n", path: "t")
        #expect(config.admin == HydraConfig.Admin(users: ["carol"], group: "staff"))
    }
}
