// Stand-ins for what the front asks of the system, so that its decisions can be tested in Swift
// without root, sudo or accounts: the helpers (addldapuser, ipynb-launch) and the user database.
import HydraCore
import HydraFront
import HydraSystem
import Synchronization

/// The privileged helpers, answering what the test says and noting every call.
package final class FakeHelpers: HelperRunning {
    private let state: Mutex<(addLDAPUser: HelperCalls.Outcome, start: HelperCalls.Outcome, calls: [String])>

    package init(addLDAPUser: HelperCalls.Outcome = .exit(.done, json: #"{"actions":[],"repairs":[]}"#),
                start: HelperCalls.Outcome = .started()) {
        state = Mutex((addLDAPUser, start, []))
    }

    /// "addldapuser NAME", "start NAME", "stop NAME", in the order the front made them.
    package var calls: [String] { state.withLock { $0.calls } }

    package func addLDAPUser(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("addldapuser \(name)"); return $0.addLDAPUser }
    }

    package func startServer(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("start \(name)"); return $0.start }
    }

    package func stopServer(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("stop \(name)"); return .exit(.done, json: #"{"stopped":"yes"}"#) }
    }
}

extension HelperCalls.Outcome {
    /// A helper that exited with `status`, printing `json`.
    package static func exit(_ status: ExitStatus, json: String = "") -> Self {
        Self(status: status.rawValue, output: Array(json.utf8))
    }

    /// `ipynb-launch start --json` having started a server with this token.
    package static func started(token: String = String(repeating: "a", count: 64)) -> Self {
        exit(.done, json: #"{"token":"\#(token)","outcome":"started","socket":"/run/hydra/x/jupyter.sock","sync":[]}"#)
    }
}

/// Accounts and groups that exist only in the test.
package struct FakeAccounts: AccountDatabase {
    package var users: [PasswdEntry]
    package var groups: [GroupEntry]

    package init(users: [PasswdEntry] = [], groups: [GroupEntry] = []) {
        self.users = users
        self.groups = groups
    }

    package func user(named name: String) -> PasswdEntry? { users.first { $0.name == name } }
    package func user(uid: UInt32) -> PasswdEntry? { users.first { $0.uid == uid } }
    package func group(named name: String) -> GroupEntry? { groups.first { $0.name == name } }
    package func groupNames(of user: PasswdEntry) -> [String] {
        groups.filter { $0.gid == user.gid || $0.members.contains(user.name) }.map(\.name)
    }
}
