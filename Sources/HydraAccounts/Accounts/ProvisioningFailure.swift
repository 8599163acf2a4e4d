import HydraSite
import HydraSystem

/// Why addldapuser could not make an account (beyond the policy's refusals, AccountRefusal).
package enum ProvisioningFailure: HydraError, Equatable {
    case notInDirectory(UserName)
    case localUIDRangeUsedUp(min: Int, max: Int)
    case cannotRecordLocalUID(file: String, error: String)
    case commandFailed(command: String, exitStatus: Int32, error: String)

    package var exitStatus: ExitStatus {
        switch self {
        case .notInDirectory: .refused
        case .localUIDRangeUsedUp, .cannotRecordLocalUID, .commandFailed: .systemError
        }
    }

    package var description: String {
        switch self {
        case .notInDirectory(let name):
            "\(name) is not in the directory and accounts.local_uid_fallback is off"
        case .localUIDRangeUsedUp(let min, let max):
            "the local UID range \(min)-\(max) is used up (raise accounts.local_uid_max)"
        case .cannotRecordLocalUID(let file, let error):
            "cannot record the local UID high-water mark in \(file): \(error)"
        case .commandFailed(let command, let status, let error):
            "\(command) failed (exit \(status)): \(error)"
        }
    }
}
