#if canImport(Glibc)
import Glibc
#endif

/// Who ipynb-launch is running as, checked before it touches anything: never root, never an
/// account outside the hydra group or refused by the account policy.
public struct LaunchIdentity: Sendable {
    public let name: UserName
    public let account: PasswdEntry

    public static func current(config: HydraConfig) throws -> LaunchIdentity {
        let uid = getuid()
        guard uid != 0, geteuid() != 0 else {
            throw StepFailure("ipynb-launch never runs as root; the front runs it as the user (sudo -u NAME)", status: .refused)
        }
        guard let account = UserDatabase.user(uid: uid) else {
            throw StepFailure("UID \(uid) has no account in the user database", status: .refused)
        }
        let name = try UserName(account.name, extraPattern: config.accounts.namePattern)
        try AccountPolicy(config: config).checkExisting(account, name: name)
        guard UserDatabase.groupNames(of: account).contains(config.accounts.group) else {
            throw StepFailure("\(name) is not in the group \(config.accounts.group); run addldapuser \(name) first", status: .refused)
        }
        return LaunchIdentity(name: name, account: account)
    }
}
