@testable import HydraSite
@testable import HydraAccounts
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("LDAP: filter escaping and the rules for using an entry")
struct DirectoryTests {
    let settings = HydraConfig.LDAP(uri: "ldap://x/", base: "dc=x", bindDN: "", bindPasswordFile: "", startTLS: false,
                                    timeoutSeconds: 1, uidAttribute: "uid", uidNumberAttribute: "uidNumber", displayNameAttribute: "cn")
    let ada = try! UserName("ada")

    @Test("filter metacharacters are escaped (RFC 4515), so no value widens the filter")
    func escaping() {
        #expect(LDAPConnection.equalityFilter(attribute: "uid", value: "ada") == "(uid=ada)")
        #expect(LDAPConnection.equalityFilter(attribute: "uid", value: "*)(uid=*") == "(uid=\\2A\\29\\28uid=\\2A)")
        #expect(LDAPConnection.equalityFilter(attribute: "uid", value: "a\\b") == "(uid=a\\5Cb)")
    }

    func entry(_ attributes: [String: [String]]) -> LDAPEntry { LDAPEntry(dn: "uid=ada,dc=x", attributes: attributes) }

    @Test("no entry is a definite no; one good entry is a person")
    func interpret() throws {
        #expect(try DirectoryLookup.interpret([], name: ada, settings: settings) == .noSuchEntry)
        let found = try DirectoryLookup.interpret([entry(["uid": ["ada"], "uidNumber": ["20001"], "cn": ["Ada L"]])], name: ada, settings: settings)
        #expect(found == .found(DirectoryPerson(dn: "uid=ada,dc=x", uidNumber: 20001, displayName: "Ada L")))
    }

    @Test("unusable entries fail closed", arguments: [
        [["uid": ["ada"]]],
        [["uid": ["ada"], "uidNumber": ["-1"]]],
        [["uid": ["ada"], "uidNumber": ["1", "2"]]],
        [["uid": ["ada"], "uidNumber": ["12abc"]]],
        [["uid": ["ADA"], "uidNumber": ["20001"]]],
        [["uid": ["ada"], "uidNumber": ["1"]], ["uid": ["ada"], "uidNumber": ["2"]]],
    ])
    func unusable(_ entries: [[String: [String]]]) {
        #expect(throws: DirectoryError.self) {
            try DirectoryLookup.interpret(entries.map(entry), name: ada, settings: settings)
        }
    }

    @Test("display names cannot add passwd fields or lines")
    func gecos() {
        #expect(DirectoryLookup.gecosSafe("Ada: L,x=y\nroot::0:0") == "Ada  L x y root  0 0")
        #expect(DirectoryLookup.gecosSafe(String(repeating: "é", count: 200)).utf8.count <= 129)
    }

    @Test("an unreachable server is 'unavailable', never 'no such entry'")
    func unreachable() {
        var closed = settings
        closed.uri = "ldap://127.0.0.1:1/"
        do {
            _ = try DirectoryLookup(settings: closed).person(named: ada)
            Issue.record("an unreachable server answered")
        } catch {
            guard case .unavailable = error else { Issue.record("wrong error: \(error)"); return }
        }
    }
}
