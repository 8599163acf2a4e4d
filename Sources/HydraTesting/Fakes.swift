// Stand-ins for what the front asks of the system, so that its decisions can be tested in Swift
// without root, sudo or accounts: the helpers (addldapuser, ipynb-launch) and the user database.
import HydraSite
import HydraAccounts
import HydraServers
import HydraFront
import HydraSystem
import Synchronization

/// The privileged helpers, answering what the test says and noting every call.
package final class FakeHelpers: HelperRunning {
    private let state: Mutex<(addLDAPUser: HelperCalls.Outcome, start: HelperCalls.Outcome, calls: [String])>

    package init(addLDAPUser: HelperCalls.Outcome = .answer(.done, ProvisionReport.fake()),
                start: HelperCalls.Outcome = .started()) {
        state = Mutex((addLDAPUser, start, []))
    }

    /// "addldapuser NAME", "start NAME", "stop NAME", "sync NAME", in the order the front made them.
    package var calls: [String] { state.withLock { $0.calls } }

    package func addLDAPUser(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("addldapuser \(name)"); return $0.addLDAPUser }
    }

    package func startServer(_ name: UserName, profile: String?) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("start \(name)" + (profile.map { " --profile \($0)" } ?? "")); return $0.start }
    }

    package func stopServer(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("stop \(name)"); return .exit(.done, json: #"{"stopped":"yes"}"#) }
    }

    package func syncCourses(_ name: UserName) throws -> HelperCalls.Outcome {
        state.withLock { $0.calls.append("sync \(name)"); return .exit(.done, json: "[]") }
    }
}

extension HelperCalls.Outcome {
    /// A helper that exited with `status`, printing `json`.
    package static func exit(_ status: ExitStatus, json: String = "") -> Self {
        Self(status: status.rawValue, output: Array(json.utf8))
    }

    /// A helper that exited with `status`, printing `answer` as the helpers do (HelperRun).
    package static func answer(_ status: ExitStatus, _ answer: some Encodable) -> Self {
        Self(status: status.rawValue, output: HelperRun.json(answer) ?? [])
    }

    /// A helper that failed with this message, as the helpers print a failure.
    package static func failure(_ status: ExitStatus, _ message: String) -> Self {
        answer(status, HelperRun.ErrorReport(user: "alice", error: message, exitStatus: status.rawValue))
    }

    /// `ipynb-launch start --json` having started a server with this token.
    package static func started(token: String = String(repeating: "a", count: 64)) -> Self {
        answer(.done, LaunchReport.fake(token: token))
    }
}

extension LaunchReport {
    /// A start's answer for alice: by default a local server just started.
    package static func fake(token: String = String(repeating: "a", count: 64), outcome: Outcome = .started,
                             place: ServerPlace = .local(socket: "/run/hydra/alice/jupyter.sock", pid: 4242, supervisor: .detached),
                             queued: SlurmClient.Job? = nil, profile: String = Profile.implicitName) -> Self {
        LaunchReport(user: "alice", baseURL: "/user/alice/", token: token, outcome: outcome, profile: profile, place: place,
                     queued: queued, seconds: 0.5, sync: [])
    }
}

extension ProvisionReport {
    /// addldapuser's answer for alice: nothing to do.
    package static func fake(actions: [String] = [], repairs: [String] = [], warnings: [String] = []) -> Self {
        ProvisionReport(user: "alice", uid: 10_001, outcome: .alreadyFine, source: "existing", home: "/home/alice",
                        runtimeDir: "/run/hydra/alice", actions: actions, repairs: repairs, warnings: warnings, dryRun: false)
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
