import HydraSite
import HydraAccounts
import HydraSystem

/// The front's limits on running the helpers, as file locks in `<runtime_dir>/.front` (root's
/// folder, group of the web server: users cannot touch them). A lock vanishes with the process
/// that held it, so a killed hydra-cgi never leaves one behind.
/// - one helper per user at a time: a second visit meanwhile gets the "starting" page, so no
///   single user can occupy every front worker;
/// - at most `server.max_concurrent_starts` servers starting at once on the machine.
package struct StartGate: Sendable {
    package let directory: String
    package let slots: Int

    package init(config: HydraConfig) {
        directory = "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)"
        slots = config.server.maxConcurrentStarts
    }

    /// This user's turn, or nil while another request works for the same user (after waiting
    /// up to `patience` seconds: for work done after the answer, which may wait its turn).
    package func userTurn(_ name: UserName, patience: Double? = nil) throws -> FileLock? {
        try? FileLock("user-\(name.value)", in: DirectoryHandle.open(directory), mode: 0o660, wait: patience != nil,
                      timeoutSeconds: patience)
    }

    /// A start slot, or nil when as many servers as allowed are starting.
    package func startSlot() throws -> FileLock? {
        let front = try DirectoryHandle.open(directory)
        for index in 0..<slots {
            if let slot = try? FileLock("slot-\(index)", in: front, mode: 0o660, wait: false) { return slot }
        }
        return nil
    }
}
