import HydraSite
import HydraAccounts
import HydraSystem

/// Who ipynb-launch is running as, checked before it touches anything: never root, never an
/// account outside the hydra group or refused by the account policy.
package struct LaunchIdentity: Sendable {
    package let name: UserName
    package let account: PasswdEntry
    /// Its groups, as the user database says (the profiles it may use follow from them).
    package var groupNames: [String] = []

    package static func current(config: HydraConfig) throws -> LaunchIdentity {
        let uid = ProcessControl.realUserID
        guard uid != 0, ProcessControl.effectiveUserID != 0 else {
            throw ServerFailure.runsAsRoot
        }
        guard let account = UserDatabase.user(uid: uid) else {
            throw ServerFailure.unknownUID(uid)
        }
        let name = try UserName(account.name, extraPattern: config.accounts.namePattern)
        try AccountPolicy(config: config).checkExisting(account, name: name)
        let groupNames = UserDatabase.groupNames(of: account)
        guard groupNames.contains(config.accounts.group) else {
            throw ServerFailure.notInGroup(name, group: config.accounts.group)
        }
        return LaunchIdentity(name: name, account: account, groupNames: groupNames)
    }
}
