#if canImport(Glibc)
import Glibc
#endif

/// An account as the system's user database (NSS: /etc/passwd, LDAP through sssd, ...) has it.
package struct PasswdEntry: Sendable, Equatable {
    package let name: String
    package let uid: UInt32
    package let gid: UInt32
    package let gecos: String
    package let home: String
    package let shell: String

    package init(name: String, uid: UInt32, gid: UInt32, gecos: String, home: String, shell: String) {
        (self.name, self.uid, self.gid, self.gecos, self.home, self.shell) = (name, uid, gid, gecos, home, shell)
    }
}

package struct GroupEntry: Sendable, Equatable {
    package let name: String
    package let gid: UInt32
    package let members: [String]

    package init(name: String, gid: UInt32, members: [String]) {
        (self.name, self.gid, self.members) = (name, gid, members)
    }
}

/// The accounts and groups the front and the policy decide on: the system's (`SystemAccounts`),
/// or in a test, accounts that exist only there (HydraTesting's `FakeAccounts`).
package protocol AccountDatabase: Sendable {
    func user(named name: String) -> PasswdEntry?
    func user(uid: UInt32) -> PasswdEntry?
    func group(named name: String) -> GroupEntry?
    /// The names of every group the user belongs to, primary group included.
    func groupNames(of user: PasswdEntry) -> [String]
}

/// The system's user database (NSS).
package struct SystemAccounts: AccountDatabase {
    package init() {}
    package func user(named name: String) -> PasswdEntry? { UserDatabase.user(named: name) }
    package func user(uid: UInt32) -> PasswdEntry? { UserDatabase.user(uid: uid) }
    package func group(named name: String) -> GroupEntry? { UserDatabase.group(named: name) }
    package func groupNames(of user: PasswdEntry) -> [String] { UserDatabase.groupNames(of: user) }
}

/// Read-only look-ups in the user and group databases (the reentrant libc calls).
package enum UserDatabase {
    package static func user(named name: String) -> PasswdEntry? {
        withPasswd { getpwnam_r(name, &$0, $1, $2, &$3) }
    }

    package static func user(uid: UInt32) -> PasswdEntry? {
        withPasswd { getpwuid_r(uid, &$0, $1, $2, &$3) }
    }

    package static func group(named name: String) -> GroupEntry? {
        withGroup { getgrnam_r(name, &$0, $1, $2, &$3) }
    }

    package static func group(gid: UInt32) -> GroupEntry? {
        withGroup { getgrgid_r(gid, &$0, $1, $2, &$3) }
    }

    /// The names of every group the user belongs to, primary group included.
    package static func groupNames(of user: PasswdEntry) -> [String] {
        var count: Int32 = 64
        var ids = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(user.name, user.gid, &ids, &count) < 0 {
            ids = [gid_t](repeating: 0, count: Int(count) * 2)
            count = Int32(ids.count)
        }
        return ids.prefix(Int(count)).compactMap { group(gid: $0)?.name }
    }

    private static func withPasswd(
        _ call: (inout passwd, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<passwd>?) -> Int32
    ) -> PasswdEntry? {
        var size = 4096
        while true {
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let code = call(&entry, buffer, size, &result)
            if code == ERANGE { size *= 4; continue }
            guard code == 0, result != nil else { return nil }
            return PasswdEntry(
                name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid,
                gecos: entry.pw_gecos.map { String(cString: $0) } ?? "",
                home: String(cString: entry.pw_dir), shell: String(cString: entry.pw_shell))
        }
    }

    private static func withGroup(
        _ call: (inout Glibc.group, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<Glibc.group>?) -> Int32
    ) -> GroupEntry? {
        var size = 4096
        while true {
            var entry = Glibc.group()
            var result: UnsafeMutablePointer<group>?
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let code = call(&entry, buffer, size, &result)
            if code == ERANGE { size *= 4; continue }
            guard code == 0, result != nil else { return nil }
            var members: [String] = []
            var cursor = entry.gr_mem
            while let member = cursor?.pointee {
                members.append(String(cString: member))
                cursor = cursor! + 1
            }
            return GroupEntry(name: String(cString: entry.gr_name), gid: entry.gr_gid, members: members)
        }
    }
}
