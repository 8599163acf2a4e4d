/// The exit codes of hydra's helpers, one table for all of them (documented in each `--help`
/// and in README.md). The front maps them to pages; admins' scripts can rely on them.
package enum ExitStatus: Int32, CaseIterable, Sendable {
    /// addldapuser: the account was created. ipynb-launch: a new server was started.
    case done = 0
    /// addldapuser: the account was already fine. ipynb-launch: the running server was reused.
    case alreadyFine = 1
    /// ipynb-launch (Slurm): the server's job waits in the queue; start again to follow it.
    case waiting = 2
    /// ipynb-launch: another start, stop or sync of the person's server holds their lock (perhaps
    /// their own, over ssh); nothing was done: try again once it ends.
    case busy = 3
    /// Wrong options or arguments.
    case usage = 64
    /// The user name is not a valid hydra name (nothing was looked up or changed).
    case invalidName = 65
    /// The directory (LDAP) could not be asked: down, timed out, bind refused.
    case ldapUnavailable = 69
    /// A bug or an unexpected system failure; the message says what failed.
    case internalError = 70
    /// An operating-system step failed (useradd, a file in /run, spawning a process).
    case systemError = 71
    /// ipynb-launch: the user's home has no space left, so the server cannot start.
    case homeFull = 73
    /// A server or another resource is busy or did not come up in time; try again.
    case temporaryFailure = 75
    /// The directory answered, but its entry cannot be used (no uidNumber, several entries, ...).
    case ldapEntryUnusable = 76
    /// The account may not use hydra (system or privileged account, UID clash, not in the group).
    case refused = 77
    /// The configuration file is missing, unreadable, not root-owned or invalid.
    case configurationError = 78

    package var summary: String {
        switch self {
        case .done: "done (account created / server started)"
        case .alreadyFine: "already fine (account existed / server reused)"
        case .waiting: "waiting: the server's Slurm job is queued; start again to follow it"
        case .busy: "busy: another start, stop or sync of this person's server is running; nothing was done"
        case .usage: "usage error"
        case .invalidName: "invalid user name"
        case .ldapUnavailable: "LDAP unavailable"
        case .internalError: "internal error"
        case .systemError: "system error"
        case .homeFull: "the user's home is full"
        case .temporaryFailure: "temporary failure, try again"
        case .ldapEntryUnusable: "LDAP entry unusable"
        case .refused: "refused: this account may not use hydra"
        case .configurationError: "configuration error"
        }
    }

    /// The table as `--help` prints it.
    package static func helpTable(_ statuses: [ExitStatus]) -> String {
        statuses.map { "  \($0.rawValue)\t\($0.summary)" }.joined(separator: "\n")
    }
}

/// Every error hydra reports carries an exit status and a message an admin can act on.
package protocol HydraError: Error, CustomStringConvertible, Sendable {
    var exitStatus: ExitStatus { get }
}
