@testable import HydraSite
@testable import HydraAccounts
import Foundation
import HydraTesting
import Testing
@testable import HydraFront
@testable import HydraSystem

/// The choice of profile at the front (FrontVisitTests' fakes and folders): who sees a choice,
/// what a posted choice may start, and what it may not.
extension FrontVisitTests {
    static let profiles = """
        [[profiles]]
        name = "course"
        title = "Course"
        description = "1 GiB, for the course's notebooks"
        default = true
        [profiles.limits]
        memory_max = "1G"
        [[profiles]]
        name = "research"
        title = "Research <big>"
        groups = ["research"]
        [profiles.limits]
        memory_max = "4G"
        """

    var bob: PasswdEntry { PasswdEntry(name: "bob", uid: uid + 1, gid: webGID, gecos: "", home: "\(base)/home-bob", shell: "/bin/bash") }

    func post(_ front: Front, as user: String, form: String, origin: String? = "http://localhost") -> (status: Int, page: String, headers: [String: String]) {
        var parameters = ["REQUEST_URI": "/hydra/profile", "REQUEST_METHOD": "POST", "REMOTE_USER": user,
                          "CONTENT_TYPE": "application/x-www-form-urlencoded"]
        parameters["HTTP_ORIGIN"] = origin
        let response = front.handle(FrontRequest(parameters: parameters, body: Array(form.utf8)))
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name, default: ""] += value + "\n" }
        return (response.status, String(decoding: response.body, as: UTF8.self), headers)
    }

    func token(_ front: Front, for user: String) throws -> String {
        try front.forms.mint(.profile, for: try UserName(user))
    }

    @Test func aPersonAllowedOneProfileGoesStraightToTheLabWithoutAChoice() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers, users: [alice], profiles: Self.profiles))
        #expect(answer.status == 200 && answer.page.contains(#"id="login""#))
        #expect(helpers.calls == ["start alice"])
    }

    @Test func aPersonAllowedSeveralChoosesFirstWithTheDefaultSelectedAndEverythingEscaped() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers, users: [alice], profiles: Self.profiles, research: ["alice"]))
        #expect(answer.status == 200 && helpers.calls.isEmpty)
        #expect(answer.page.contains(#"value="course" checked"#) && answer.page.contains(#"value="research">"#))
        #expect(answer.page.contains("Research &lt;big&gt;") && !answer.page.contains("<big>"))
        #expect(answer.page.contains(#"name="_xsrf""#) && !answer.page.contains("<script"))
    }

    @Test func aChoicePostedFromTheSitesPageStartsThatProfileAndIsRemembered() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let front = try front(helpers, users: [alice], profiles: Self.profiles, research: ["alice"])
        let answer = post(front, as: "alice", form: "profile=research&_xsrf=\(try token(front, for: "alice"))")
        #expect(answer.status == 200 && answer.page.contains(#"id="login""#))
        #expect(helpers.calls == ["start alice --profile research"])
        // The next visit (the server not running yet, say) goes on with it, and the choice page selects it.
        #expect(visit(front).status == 200 && helpers.calls.last == "start alice --profile research")
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)],
                                              ofItemAtPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)/profiles/alice")
        let later = visit(front)
        #expect(later.page.contains(#"value="research" checked"#) && helpers.calls.count == 2)
    }

    @Test func aRecordedServerOfTheirsIsNotAskedAboutAgain() throws {
        // A Slurm job (or a server that stopped answering) is recorded: no socket for the fast
        // path, but ipynb-launch keeps its profile, so no choice page on every visit.
        readyRuntimeDirectory()
        try "research".write(toFile: "\(runtime)/alice/\(RuntimeDirectory.Entry.profile)", atomically: true, encoding: .utf8)
        let helpers = FakeHelpers()
        let answer = visit(try front(helpers, users: [alice], profiles: Self.profiles, research: ["alice"]))
        #expect(answer.page.contains(#"id="login""#) && helpers.calls == ["start alice"])
    }

    @Test func threatBobCannotGetResearchByAForgedOrReplayedOrHostileForm() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let front = try front(helpers, users: [alice, bob], profiles: Self.profiles, research: ["alice"])
        let bobs = try token(front, for: "bob")
        // His own valid token, but a profile his groups do not allow: 403.
        #expect(post(front, as: "bob", form: "profile=research&_xsrf=\(bobs)").status == 403)
        // alice's form replayed by bob: a token minted for someone else.
        #expect(post(front, as: "bob", form: "profile=research&_xsrf=\(try token(front, for: "alice"))").status == 403)
        // A page elsewhere posting for him, and a form without a token.
        #expect(post(front, as: "bob", form: "profile=course&_xsrf=\(bobs)", origin: "http://evil.example").status == 403)
        #expect(post(front, as: "bob", form: "profile=course").status == 403)
        for hostile in ["", "..%2F", String(repeating: "a", count: 200), "nonexistent", "Course", "course%00"] {
            #expect([400, 403].contains(post(front, as: "bob", form: "profile=\(hostile)&_xsrf=\(bobs)").status), "\(hostile)")
        }
        #expect(helpers.calls.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(runtime)/\(RuntimeDirectory.frontDirectoryName)/profiles/bob"))
    }

    @Test func theSwitchPageSaysTheServerWillBeRestartedAndAskMakesNoChange() throws {
        let helpers = FakeHelpers()
        let front = try front(helpers, users: [alice], profiles: Self.profiles, research: ["alice"])
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": "/hydra/profile", "REQUEST_METHOD": "GET", "REMOTE_USER": "alice"]))
        let page = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 200 && page.contains("restarted") && page.contains("save your open") && helpers.calls.isEmpty)
    }

    @Test func theSwitchPageSelectsAndMarksTheRunningServersProfileOverTheLastChoice() throws {
        // She chose course on the site, then started research over ssh: the page says research.
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        let front = try front(helpers, users: [alice], profiles: Self.profiles, research: ["alice"])
        #expect(post(front, as: "alice", form: "profile=course&_xsrf=\(try token(front, for: "alice"))").status == 200)
        try "research".write(toFile: "\(runtime)/alice/\(RuntimeDirectory.Entry.profile)", atomically: true, encoding: .utf8)
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": "/hydra/profile", "REQUEST_METHOD": "GET", "REMOTE_USER": "alice"]))
        let page = String(decoding: response.body, as: UTF8.self)
        #expect(page.contains(#"value="research" checked>"#) && !page.contains(#"value="course" checked"#))
        #expect(page.components(separatedBy: "(your server's profile now)").count == 2, "\(page)")
    }

    @Test func aSiteWithoutProfilesNeverShowsAChoice() throws {
        readyRuntimeDirectory()
        let helpers = FakeHelpers()
        #expect(visit(try front(helpers, users: [alice], research: ["alice"])).page.contains(#"id="login""#))
        #expect(helpers.calls == ["start alice"])
    }
}
