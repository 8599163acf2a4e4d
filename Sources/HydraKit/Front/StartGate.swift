#if canImport(Glibc)
import Glibc
#endif

/// The front's two limits on starting servers, as file locks in `<runtime_dir>/.front` (they
/// vanish with the process that held them, so a killed hydra-cgi never leaves one behind):
/// - one start per user at a time: a second visit meanwhile gets the "starting" page;
/// - at most `server.max_concurrent_starts` starts at once on the machine.
public struct StartGate: Sendable {
    public let directory: String
    public let slots: Int

    public init(config: HydraConfig) {
        directory = "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)"
        slots = config.server.maxConcurrentStarts
    }

    public enum Admission {
        case admitted(user: FileLock, slot: FileLock)
        /// This user's server is being started by another request.
        case alreadyStarting
        /// The machine is starting as many servers as it may.
        case full
    }

    public func admit(_ name: UserName) throws -> Admission {
        let front = try DirectoryHandle.open(directory)
        guard let user = try? FileLock("start-\(name.value)", in: front, mode: 0o660, wait: false) else { return .alreadyStarting }
        for index in 0..<slots {
            if let slot = try? FileLock("slot-\(index)", in: front, mode: 0o660, wait: false) {
                return .admitted(user: user, slot: slot)
            }
        }
        return .full
    }
}
