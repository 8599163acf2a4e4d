import HydraSystem
/// `ipynb-launch check`: may this account use hydra, is its runtime directory ready, and, with
/// a `[slurm]` table, would Slurm run this person's server job?
package struct LaunchCheck: Sendable, Encodable {
    package let user: String
    package let uid: UInt32
    package let runtimeDir: String
    package let runtimeDirReady: Bool
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
        return runtimeDirReady ? .done : .temporaryFailure
    }

    package var summary: String {
        let runtime = runtimeDirReady ? "\(user) (UID \(uid)) may use hydra; \(runtimeDir) is ready"
                                      : "\(user) (UID \(uid)) may use hydra, but \(runtimeDir) is not ready (run addldapuser \(user) as root)"
        return [runtime, slurm?.summary].compactMap { $0 }.joined(separator: "\n")
    }

    enum CodingKeys: String, CodingKey { case user, uid, slurm, runtimeDirReady = "ready", runtimeDir = "runtime_dir" }

    package init(config: HydraConfig, identity: LaunchIdentity) {
        user = identity.name.value
        uid = identity.account.uid
        runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        runtimeDirReady = RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config)
        slurm = config.slurm.map { SlurmReadiness(SlurmClient(settings: $0)) }
    }
}
