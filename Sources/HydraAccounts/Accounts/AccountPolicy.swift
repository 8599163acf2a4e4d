import HydraSite
import HydraSystem
import FoundationEssentials

/// Why an account may not use hydra.
package struct AccountRefusal: HydraError, Equatable {
    package let check: AccountPolicy.Check
    package let detail: String
    package var exitStatus: ExitStatus { .refused }
    package var description: String { "refused (check \(check.rawValue), \(check.summary)): \(detail)" }
}

/// Which accounts hydra may serve. The checks are one numbered list, applied in this order to
/// every account hydra touches, existing or about to be created (in the manner of Apache
/// suEXEC's documented checks). Each one has a test named after the threat it stops.
package struct AccountPolicy: Sendable {
    package enum Check: Int, Sendable, CaseIterable {
        /// 1. The name is on the configured deny list (root, www-data, nobody, daemon, ...).
        case denied = 1
        /// 2. The UID is 0: never root, whatever its name.
        case rootUID
        /// 3. The UID is below UID_MIN of /etc/login.defs or the configured uid_min: a system account.
        case systemUID
        /// 4. The UID is above the configured uid_max.
        case uidAboveRange
        /// 5. The account is the web server's own user: it must never be a hydra user.
        case webServerAccount
        /// 6. The account's primary or supplementary group is privileged (sudo, adm, wheel, ...).
        case privilegedGroup
        /// 7. A new account's UID already belongs to another local account.
        case uidTaken
        /// 8. An existing account hydra did not create, which the directory does not confirm
        ///    (an entry with the same name and the same UID): a local login of the same name
        ///    as someone who signs in to the site is not theirs to take.
        case notConfirmed

        package var summary: String {
            switch self {
            case .denied: "name on the deny list"
            case .rootUID: "UID 0"
            case .systemUID: "system UID"
            case .uidAboveRange: "UID above uid_max"
            case .webServerAccount: "the web server's account"
            case .privilegedGroup: "member of a privileged group"
            case .uidTaken: "UID already in use"
            case .notConfirmed: "a local account hydra did not create"
            }
        }
    }

    package let accounts: HydraConfig.Accounts
    package let webServerUser: String
    /// UID_MIN of /etc/login.defs.
    package let systemUIDMinimum: UInt32
    /// Where accounts and groups are looked up.
    package let database: any AccountDatabase

    package init(config: HydraConfig, loginDefs: String = "/etc/login.defs", database: any AccountDatabase = SystemAccounts()) {
        self.database = database
        accounts = config.accounts
        webServerUser = config.site.webServerUser
        systemUIDMinimum = Self.uidMinimum(loginDefs: loginDefs)
    }

    /// Checks 1: before anything is looked up.
    package func checkName(_ name: UserName) throws(AccountRefusal) {
        if accounts.deny.contains(name.value) || name.value == webServerUser {
            throw AccountRefusal(check: .denied, detail: "\(name) is on the deny list")
        }
    }

    /// Checks 2-4, for an existing account's UID or one about to be given.
    package func checkUID(_ uid: UInt32, of name: UserName) throws(AccountRefusal) {
        if uid == 0 { throw AccountRefusal(check: .rootUID, detail: "\(name) has UID 0") }
        let minimum = max(systemUIDMinimum, UInt32(accounts.uidMin))
        if uid < minimum {
            throw AccountRefusal(check: .systemUID, detail: "\(name) has UID \(uid), below the minimum \(minimum)")
        }
        if uid > UInt32(accounts.uidMax) {
            throw AccountRefusal(check: .uidAboveRange, detail: "\(name) has UID \(uid), above uid_max \(accounts.uidMax)")
        }
    }

    /// Checks 1-6 for an account that exists.
    package func checkExisting(_ entry: PasswdEntry, name: UserName) throws(AccountRefusal) {
        try checkName(name)
        try checkUID(entry.uid, of: name)
        if let web = database.user(named: webServerUser), web.uid == entry.uid {
            throw AccountRefusal(check: .webServerAccount, detail: "\(name) has the web server's UID \(entry.uid)")
        }
        if entry.gid == 0 {
            throw AccountRefusal(check: .privilegedGroup, detail: "\(name)'s primary group is GID 0")
        }
        let privileged = Set(accounts.privilegedGroups).intersection(database.groupNames(of: entry))
        if !privileged.isEmpty {
            throw AccountRefusal(check: .privilegedGroup, detail: "\(name) is in \(privileged.sorted().joined(separator: ", "))")
        }
    }

    /// Checks 2-4 and 7 for an account about to be created with `uid`.
    package func checkNew(uid: UInt32, name: UserName) throws(AccountRefusal) {
        try checkUID(uid, of: name)
        if let owner = database.user(uid: uid) {
            throw AccountRefusal(check: .uidTaken, detail: "the directory gives \(name) UID \(uid), which already belongs to the local account \(owner.name)")
        }
    }

    /// UID_MIN from login.defs (1000 when absent or unreadable, Debian's default).
    static func uidMinimum(loginDefs: String) -> UInt32 {
        guard let text = FileSystem.readText(loginDefs) else { return 1000 }
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "UID_MIN", let value = UInt32(fields[1]) { return value }
        }
        return 1000
    }
}
