@testable import HydraSite
@testable import HydraAccounts
import Foundation
import HydraTesting
import Testing
@testable import HydraSystem

/// Which accounts hydra may serve (AccountPolicy), check by check, with the site's defaults and
/// a fake account database. Each row is a threat: an account a signed-in name could map onto that
/// must never run a notebook server. test_addldapuser.py shows the same refusals end to end, as
/// root, through sudo and LDAP; this table is where every check has its own row.
@Suite("Which accounts hydra may serve, check by check")
struct AccountPolicyTests {
    static let web = PasswdEntry(name: "www-data", uid: 33, gid: 33, gecos: "", home: "/var/www", shell: "/usr/sbin/nologin")
    static let groups = [GroupEntry(name: "sudo", gid: 27, members: ["mallory"]), GroupEntry(name: "hydra", gid: 5000, members: []),
                         GroupEntry(name: "docker", gid: 998, members: []), GroupEntry(name: "students", gid: 6000, members: [])]

    static func person(_ name: String, uid: UInt32, gid: UInt32 = 6000) -> PasswdEntry {
        PasswdEntry(name: name, uid: uid, gid: gid, gecos: "", home: "/home/\(name)", shell: "/bin/bash")
    }

    /// The site's defaults; UID_MIN 1000 as on Debian. A login.defs that does not exist reads as 1000.
    static func policy(extra: String = "", users: [PasswdEntry] = []) throws -> AccountPolicy {
        let config = try HydraConfig.parse("[site]\npublic_url = \"https://jupyter.example.org\"\n" + extra, path: "/etc/hydra/hydra.toml")
        return AccountPolicy(config: config, loginDefs: "/nonexistent/login.defs",
                             database: FakeAccounts(users: [web] + users, groups: groups))
    }

    struct ExistingCase: CustomTestStringConvertible, Sendable {
        let what: String
        let entry: PasswdEntry
        var extra = ""
        /// nil: served.
        let refusedBy: AccountPolicy.Check?
        var testDescription: String { what }
    }

    static let existingCases: [ExistingCase] = [
        ExistingCase(what: "a student with a UID in range and ordinary groups is served", entry: person("ada", uid: 10_001), refusedBy: nil),
        ExistingCase(what: "the lowest UID the site allows is served", entry: person("ada", uid: 1000), refusedBy: nil),
        ExistingCase(what: "the highest UID the site allows is served", entry: person("ada", uid: 99_999), refusedBy: nil),
        ExistingCase(what: "threat: signing in as root", entry: person("root", uid: 0, gid: 0), refusedBy: .denied),
        ExistingCase(what: "threat: signing in as daemon (deny list, before any UID is looked at)", entry: person("daemon", uid: 20_000),
                     refusedBy: .denied),
        ExistingCase(what: "threat: the web server's user name, even if the site's deny list forgot it",
                     entry: person("www-data", uid: 20_000), extra: "[accounts]\ndeny = [\"root\"]\n", refusedBy: .denied),
        ExistingCase(what: "threat: a second UID 0 account under another name (toor)", entry: person("toor", uid: 0, gid: 6000),
                     refusedBy: .rootUID),
        ExistingCase(what: "threat: a system account (UID 999, below UID_MIN)", entry: person("postgres", uid: 999), refusedBy: .systemUID),
        ExistingCase(what: "threat: a UID below the site's uid_min although above UID_MIN", entry: person("ada", uid: 4999),
                     extra: "[accounts]\nuid_min = 5000\n", refusedBy: .systemUID),
        ExistingCase(what: "threat: nfsnobody's UID 4294967294, above uid_max", entry: person("nfsnobody", uid: 4_294_967_294),
                     refusedBy: .uidAboveRange),
        ExistingCase(what: "threat: an account whose primary group is GID 0", entry: person("ada", uid: 10_002, gid: 0),
                     refusedBy: .privilegedGroup),
        ExistingCase(what: "threat: a member of sudo", entry: person("mallory", uid: 10_003), refusedBy: .privilegedGroup),
        ExistingCase(what: "threat: docker as the primary group (root by another door)", entry: person("ada", uid: 10_004, gid: 998),
                     refusedBy: .privilegedGroup),
    ]

    @Test("an existing account is served or refused by the first check it fails", arguments: existingCases)
    func existing(_ row: ExistingCase) throws {
        let policy = try Self.policy(extra: row.extra)
        let name = try UserName(row.entry.name)
        do {
            try policy.checkExisting(row.entry, name: name)
            #expect(row.refusedBy == nil, "served, but check \(row.refusedBy?.rawValue ?? 0) should refuse it")
        } catch {
            #expect(error.check == row.refusedBy)
            #expect(error.description.contains("check \(error.check.rawValue)"), "the refusal names its check: \(error)")
            #expect(error.exitStatus == .refused)
        }
    }

    @Test("threat: an account that shares the web server's UID under another name is refused (check 5)")
    func webServersUIDUnderAnotherName() throws {
        // A site whose web server runs with a UID inside the people's range (some sites run
        // Apache as a dedicated user with UID 2000): a person mapped onto that UID would own the
        // front's files and the gate's socket.
        let apache = PasswdEntry(name: "apache", uid: 2000, gid: 2000, gecos: "", home: "/var/www", shell: "/usr/sbin/nologin")
        let config = try HydraConfig.parse("[site]\npublic_url = \"https://x.example\"\nweb_server_user = \"apache\"\n", path: "x")
        let policy = AccountPolicy(config: config, loginDefs: "/nonexistent", database: FakeAccounts(users: [apache], groups: Self.groups))
        #expect(throws: AccountRefusal(check: .webServerAccount, detail: "eve has the web server's UID 2000")) {
            try policy.checkExisting(Self.person("eve", uid: 2000), name: try UserName("eve"))
        }
    }

    @Test("a new account: the directory's UID must be in range and not another local account's")
    func newAccounts() throws {
        let policy = try Self.policy(users: [Self.person("localbob", uid: 10_500)])
        try policy.checkNew(uid: 10_501, name: try UserName("bob"))
        let refusals: [(UInt32, AccountPolicy.Check)] = [(0, .rootUID), (500, .systemUID), (100_000, .uidAboveRange), (10_500, .uidTaken)]
        for (uid, check) in refusals {
            #expect(performing: { try policy.checkNew(uid: uid, name: try UserName("bob")) },
                    throws: { ($0 as? AccountRefusal)?.check == check })
        }
    }

    @Test("every check but the confirmation (the provisioner's, against LDAP) has a row in the table")
    func everyCheckHasARow() {
        let covered = Set(Self.existingCases.compactMap(\.refusedBy)).union([.webServerAccount, .uidTaken])
        #expect(covered == Set(AccountPolicy.Check.allCases).subtracting([.notConfirmed]))
    }

    @Test("UID_MIN comes from login.defs; a missing or garbled one means Debian's 1000, never lower by accident")
    func uidMinimumFromLoginDefs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("logindefs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cases: [(String, UInt32)] = [
            ("UID_MIN\t\t\t 2000\nUID_MAX 60000\n", 2000),
            ("# UID_MIN 5\nUID_MIN 1500\n", 1500),
            ("UID_MAX 60000\n", 1000),
            ("UID_MIN lots\n", 1000),
            ("UID_MINIMUM 10\n", 1000),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let path = "\(folder)/login.defs.\(index)"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(AccountPolicy.uidMinimum(loginDefs: path) == expected, "\(text)")
        }
        #expect(AccountPolicy.uidMinimum(loginDefs: "\(folder)/absent") == 1000)
    }
}
