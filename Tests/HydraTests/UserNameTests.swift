@testable import HydraSite
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("User names: the one validation rule")
struct UserNameTests {
    @Test("ordinary names pass", arguments: ["a", "ada", "ada-l", "ada_l", "a1", "x2345678901234567890123456789012"])
    func accepts(_ name: String) throws {
        #expect(try UserName(name).value == name)
    }

    @Test("hostile names are refused", arguments: [
        "", "Ada", "1ada", "-oProxyCommand=id", "_ada", "ada$", "ada;id", "$(id)", "*", "*)(uid=*", "../x", "a/b",
        "ada\0root", "ada\n", "ада", "аda", "ａda", "ada\u{200B}", "a b", String(repeating: "a", count: 33),
    ])
    func refuses(_ name: String) {
        #expect(throws: InvalidName.self) { try UserName(name) }
    }

    @Test("the site's extra pattern narrows, never widens")
    func extraPattern() throws {
        #expect(throws: InvalidName.self) { try UserName("ada", extraPattern: "^[a-z]{2}[0-9]+$") }
        #expect(try UserName("ab12", extraPattern: "^[a-z]{2}[0-9]+$").value == "ab12")
        #expect(throws: InvalidName.self) { try UserName("AB12", extraPattern: ".*") }
    }

    @Test("a refusal quotes the name so it cannot forge a log line")
    func messageEscapes() {
        do {
            _ = try UserName("x\ninfo: fake line")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(error.description.contains("\\u{a}"))
            #expect(error.exitStatus == .invalidName)
        }
    }

    @Test("the Kerberos realm is stripped for the configured realm only")
    func realm() throws {
        #expect(try RemoteUser.userName(from: "ada@EXAMPLE.ORG", realm: "EXAMPLE.ORG", extraPattern: "").value == "ada")
        #expect(throws: InvalidName.self) { try RemoteUser.userName(from: "ada@EVIL.ORG", realm: "EXAMPLE.ORG", extraPattern: "") }
        #expect(throws: InvalidName.self) { try RemoteUser.userName(from: "ada@EXAMPLE.ORG", realm: "", extraPattern: "") }
        #expect(throws: InvalidName.self) { try RemoteUser.userName(from: "@EXAMPLE.ORG", realm: "EXAMPLE.ORG", extraPattern: "") }
    }
}
