import HydraSite
import HydraSystem

/// Why ipynb-launch could not run, start or reach a person's server: one case per cause, each
/// with its exit status and a message that says what to do.
package enum ServerFailure: HydraError, Equatable {
    case runsAsRoot
    case unknownUID(UInt32)
    case notInGroup(UserName, group: String)
    case runtimeDirectoryNotReady(path: String, person: UserName, webGroup: String)
    case lockTaken(path: String, seconds: Int, person: UserName)
    case tooManyProcesses(UserName, tasksMax: Int)
    case homeFull(UserName, home: String, availableKiB: UInt64)
    case userManagerNotRunning(UserName, bus: String)
    case systemdRunFailed(unit: String, error: String)
    case noMainProcess(unit: String, logTail: String)
    case exitedDuringStartup(exitStatus: Int32?, logTail: String)
    case startTimedOut(seconds: Int, logTail: String)
    case jobLost(job: String, logTail: String)
    case profileNotAllowed(UserName, profile: String)
    case noProfileAllowed(UserName)

    package var exitStatus: ExitStatus {
        switch self {
        // addldapuser has not made this account ready (or someone changed its runtime dir).
        case .runsAsRoot, .unknownUID, .notInGroup, .runtimeDirectoryNotReady, .profileNotAllowed, .noProfileAllowed: .refused
        case .systemdRunFailed, .noMainProcess, .exitedDuringStartup, .jobLost: .systemError
        case .lockTaken: .busy
        case .tooManyProcesses, .userManagerNotRunning, .startTimedOut: .temporaryFailure
        case .homeFull: .homeFull
        }
    }

    package var description: String {
        switch self {
        case .runsAsRoot:
            "ipynb-launch never runs as root; the front runs it as the user (sudo -u NAME)"
        case .unknownUID(let uid):
            "UID \(uid) has no account in the user database"
        case .notInGroup(let name, let group):
            "\(name) is not in the group \(group); run addldapuser \(name) first"
        case .runtimeDirectoryNotReady(let path, let name, let webGroup):
            "\(path) is missing or not owned by \(name) with group \(webGroup) and mode 2750; run addldapuser \(name) as root"
        case .lockTaken(let path, let seconds, let name):
            "\(path) stayed taken for \(seconds) s: another start, stop or sync of \(name) holds it (perhaps \(name)'s own ipynb-launch); nothing was done"
        case .tooManyProcesses(let name, let tasksMax):
            "\(name) has as many processes as limits.tasks_max allows (\(tasksMax)); the server cannot start until some end"
        case .homeFull(let name, let home, let available):
            "the home of \(name) (\(home)) is full: \(available) KiB free; the server starts once there is space"
        case .userManagerNotRunning(let name, let bus):
            "the systemd user manager of \(name) is not running (no \(bus)); addldapuser \(name) enables it (loginctl enable-linger \(name))"
        case .systemdRunFailed(let unit, let error):
            "systemd-run \(unit) failed: \(error)"
        case .noMainProcess(let unit, let logTail):
            "\(unit) has no main process after systemd-run; its log ends:\n\(logTail)"
        case .exitedDuringStartup(let exitStatus, let logTail):
            "the notebook server exited during start-up (\(exitStatus.map { "exit status \($0)" } ?? "it is gone")); its log ends:\n\(logTail)"
        case .startTimedOut(let seconds, let logTail):
            "the notebook server did not answer within \(seconds) s; its log ends:\n\(logTail)"
        case .jobLost(let job, let logTail):
            "the server's Slurm job \(job) ended before its server answered; its output ends:\n\(logTail)"
        case .profileNotAllowed(let name, let profile):
            "\(LogSafe.quote(profile, limit: 40)) is not a profile \(name) may use (hydra.toml's [[profiles]] and their groups); nothing was started"
        case .noProfileAllowed(let name):
            "none of hydra.toml's [[profiles]] is open to the groups of \(name); nothing was started"
        }
    }
}
