import HydraSystem

/// Why a Slurm command gave no usable answer: one case per cause, with what to do.
package enum SlurmFailure: HydraError, Equatable {
    case notInstalled(path: String)
    case controllerUnreachable(command: String, detail: String)
    case noSuchPartition(String)
    case noDefaultPartition
    case submissionRejected(reason: String)
    case commandFailed(command: String, status: Int32, error: String)
    case unexpectedOutput(command: String, output: String)

    package var exitStatus: ExitStatus {
        switch self {
        case .notInstalled, .noSuchPartition, .noDefaultPartition: .configurationError
        case .controllerUnreachable: .temporaryFailure
        case .submissionRejected: .refused
        case .commandFailed, .unexpectedOutput: .systemError
        }
    }

    package var description: String {
        switch self {
        case .notInstalled(let path):
            "\(path) is missing or not executable: install Slurm's client commands on this web host (slurm-client), or set slurm.bin_dir"
        case .controllerUnreachable(let command, let detail):
            "\(command): the Slurm controller did not answer (\(detail)); check slurmctld and munge, then try again"
        case .noSuchPartition(let name):
            "the partition '\(name)' (slurm.partition) does not exist on this cluster; sinfo lists the partitions"
        case .noDefaultPartition:
            "slurm.partition is empty and the cluster has no default partition; name one in hydra.toml"
        case .submissionRejected(let reason):
            "Slurm would not accept this person's server job with the [slurm] settings: \(reason)"
        case .commandFailed(let command, let status, let error):
            "\(command) failed with exit status \(status): \(error)"
        case .unexpectedOutput(let command, let output):
            "\(command) printed something hydra cannot read: \(output.prefix(200))"
        }
    }
}
