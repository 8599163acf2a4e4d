import HydraSite
import HydraAccounts
import FoundationEssentials
import HydraSystem
/// `ipynb-launch check`: may this account use hydra, is its runtime directory ready, and, with
/// a `[slurm]` table, would Slurm run this person's server job?
package struct LaunchCheck: Sendable, Encodable {
    package let user: String
    package let uid: UInt32
    package let runtimeDir: String
    package let runtimeDirReady: Bool
    /// Why the runtime folders are plain directories on this machine (RuntimeDirectory.tmpfsUnavailable).
    package let noTmpfs: String?
    /// server.python_env, and the versions of what hydra needs in it (absent: not installed).
    package let pythonEnv: String
    package let jupyter: [String: String]
    package let slurm: SlurmReadiness?

    /// What sinfo and `sbatch --test-only` said, or why they could not say it.
    package struct SlurmReadiness: Sendable, Encodable {
        package let partition: SlurmClient.Partition?
        /// Slurm's own words: "Job 12 to start at ... on nodes node1 in partition hydra".
        package let testSubmission: String?
        package let failure: SlurmFailure?

        enum CodingKeys: String, CodingKey { case partition, testSubmission = "test_submission", error }

        package func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(partition, forKey: .partition)
            try container.encodeIfPresent(testSubmission, forKey: .testSubmission)
            try container.encodeIfPresent(failure?.description, forKey: .error)
        }

        init(_ client: SlurmClient) {
            do throws(SlurmFailure) {
                let partition = try client.partition()
                self.partition = partition
                do throws(SlurmFailure) {
                    testSubmission = try client.testSubmission()
                    failure = nil
                } catch {
                    testSubmission = nil
                    failure = error
                }
            } catch {
                partition = nil
                testSubmission = nil
                failure = error
            }
        }

        var summary: String {
            if let failure { return "Slurm: \(failure.description)" }
            guard let partition else { return "" }
            let states = partition.nodesByState.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            return "Slurm: partition \(partition.name) is \(partition.availability) with \(partition.nodeCount) nodes (\(states)); \(testSubmission ?? "")"
        }
    }

    package var exitStatus: ExitStatus {
        if let failure = slurm?.failure { return failure.exitStatus }
        // Without Jupyter in server.python_env no server can start: the admin's to fix.
        if Self.jupyterDistributions.contains(where: { jupyter[$0] == nil }) { return .configurationError }
        return runtimeDirReady ? .done : .temporaryFailure
    }

    package var summary: String {
        let runtime = runtimeDirReady ? "\(user) (UID \(uid)) may use hydra; \(runtimeDir) is ready"
                                      : "\(user) (UID \(uid)) may use hydra, but \(runtimeDir) is not ready (run addldapuser \(user) as root)"
        let plain = noTmpfs.map { "warning: \(runtimeDir) is a plain directory, not a tmpfs of its own: \($0)" }
        let missing = Self.jupyterDistributions.filter { jupyter[$0] == nil }
        let versions = Self.jupyterDistributions.compactMap { name in jupyter[name].map { "\(name) \($0)" } }.joined(separator: ", ")
        let environment = missing.isEmpty ? "Jupyter in \(pythonEnv): \(versions)"
            : "warning: \(pythonEnv) lacks \(missing.joined(separator: ", ")) (as root: hydra-setup jupyter)"
        return [runtime, plain, environment, slurm?.summary].compactMap { $0 }.joined(separator: "\n")
    }

    /// What a server needs from server.python_env, by their Python distribution names.
    package static let jupyterDistributions = ["jupyter_server", "jupyterlab", "ipykernel"]

    /// The versions pip recorded in the environment's site-packages (NAME-VERSION.dist-info).
    package static func installedVersions(in environment: String) -> [String: String] {
        let lib = "\(environment)/lib"
        let packageFolders = (FileSystem.entryNames(in: lib) ?? [])
            .filter { $0.hasPrefix("python3") }.map { "\(lib)/\($0)/site-packages" }
        var found: [String: String] = [:]
        for folder in packageFolders {
            for entry in FileSystem.entryNames(in: folder) ?? [] where entry.hasSuffix(".dist-info") {
                let parts = entry.dropLast(".dist-info".count).split(separator: "-", maxSplits: 1)
                if parts.count == 2, jupyterDistributions.contains(String(parts[0])) { found[String(parts[0])] = String(parts[1]) }
            }
        }
        return found
    }

    enum CodingKeys: String, CodingKey {
        case user, uid, slurm, jupyter, runtimeDirReady = "ready", runtimeDir = "runtime_dir", noTmpfs = "no_tmpfs"
        case pythonEnv = "python_env"
    }

    package init(config: HydraConfig, identity: LaunchIdentity) {
        user = identity.name.value
        uid = identity.account.uid
        runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        runtimeDirReady = RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config)
        noTmpfs = RuntimeDirectory(config: config).tmpfsUnavailable
        pythonEnv = config.server.pythonEnv
        jupyter = Self.installedVersions(in: config.server.pythonEnv)
        slurm = config.slurm.map { SlurmReadiness(SlurmClient(settings: $0)) }
    }
}
