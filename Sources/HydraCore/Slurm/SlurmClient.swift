import HydraSystem

/// Slurm's commands as hydra runs them: an argument vector from `[slurm]` (never a shell),
/// a clean environment, a timeout, and the output parsed here. Runs as its caller: ipynb-launch
/// as the person, so Slurm sees the person's own account and limits.
package struct SlurmClient: Sendable {
    package let settings: SlurmSettings
    package var timeoutSeconds: Double = 30

    package init(settings: SlurmSettings) { self.settings = settings }

    /// One partition's nodes, as sinfo lists them.
    package struct Partition: Sendable, Equatable, Encodable {
        package var name: String
        package var isDefault: Bool
        /// "up", "down", "drain", "inact".
        package var availability: String
        /// Node count per state ("idle": 2, "mix": 1 ...).
        package var nodesByState: [String: Int]
        /// Node lists as Slurm writes them ("node[1-2]").
        package var nodeLists: [String]

        package var nodeCount: Int { nodesByState.values.reduce(0, +) }

        enum CodingKeys: String, CodingKey {
            case name, availability, isDefault = "default", nodesByState = "nodes_by_state", nodeLists = "nodes"
        }
    }

    /// The partition of `settings.partition`, or the cluster's default one.
    package func partition() throws(SlurmFailure) -> Partition {
        let result = try run("sinfo", ["--noheader", "--format=%P|%a|%D|%t|%N"])
        let partitions = Self.partitions(fromSinfo: result.outputText)
        if settings.partition.isEmpty {
            guard let found = partitions.first(where: \.isDefault) else { throw .noDefaultPartition }
            return found
        }
        guard let found = partitions.first(where: { $0.name == settings.partition }) else { throw .noSuchPartition(settings.partition) }
        return found
    }

    /// sinfo's lines `NAME[*]|AVAIL|COUNT|STATE|NODES`, one per partition and node state.
    static func partitions(fromSinfo text: String) -> [Partition] {
        var found: [Partition] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5, let count = Int(fields[2]) else { continue }
            let isDefault = fields[0].hasSuffix("*")
            let name = isDefault ? String(fields[0].dropLast()) : fields[0]
            // sinfo marks states with a suffix ("idle*": not responding, "mix~": powered off).
            let state = String(fields[3].prefix { $0.isLetter })
            if let index = found.firstIndex(where: { $0.name == name }) {
                found[index].nodesByState[state, default: 0] += count
                found[index].nodeLists.append(fields[4])
            } else {
                found.append(Partition(name: name, isDefault: isDefault, availability: fields[1],
                                       nodesByState: [state: count], nodeLists: [fields[4]]))
            }
        }
        return found
    }

    /// `sbatch --test-only` with the server job's options: whether, where and when Slurm would
    /// start it for this person. Nothing is submitted.
    package func testSubmission() throws(SlurmFailure) -> String {
        let script = Array("#!/bin/sh\nexit 0\n".utf8)
        let result = try run("sbatch", ["--test-only", "--job-name=hydra-check"] + settings.sbatchArguments, input: script,
                             acceptFailure: true)
        let answer = result.errorText.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        if result.status != 0 {
            let reason = answer.last.map { $0.replacingOccurrences(of: "sbatch: error: ", with: "") } ?? "exit status \(result.status)"
            throw .submissionRejected(reason: reason)
        }
        guard let line = answer.first(where: { $0.contains(" to start at ") }) else {
            throw .unexpectedOutput(command: "sbatch --test-only", output: result.errorText)
        }
        return line.hasPrefix("sbatch: ") ? String(line.dropFirst(8)) : line
    }

    /// Runs `binDir/name`; a controller that does not answer is its own failure.
    func run(_ name: String, _ arguments: [String], input: [UInt8]? = nil, acceptFailure: Bool = false) throws(SlurmFailure) -> ProcessResult {
        let path = "\(settings.binDir)/\(name)"
        guard FileSystem.isExecutable(path) else { throw .notInstalled(path: path) }
        var options = ProcessRunner.Options()
        options.input = input
        options.timeoutSeconds = timeoutSeconds
        let command = ([name] + arguments.prefix(1)).joined(separator: " ")
        let result: ProcessResult
        do {
            result = try ProcessRunner.run(path, arguments, options: options)
        } catch {
            throw .commandFailed(command: command, status: -1, error: error.description)
        }
        if result.timedOut { throw .controllerUnreachable(command: command, detail: "no answer within \(Int(timeoutSeconds)) s") }
        let error = result.errorText.trimmingCharacters(in: .whitespacesAndNewlines)
        if Self.controllerDown.contains(where: error.contains) {
            throw .controllerUnreachable(command: command, detail: error.split(separator: "\n").last.map(String.init) ?? error)
        }
        if result.status != 0, !acceptFailure { throw .commandFailed(command: command, status: result.status, error: error) }
        return result
    }

    /// What Slurm's commands print when slurmctld (or munge on the way) does not answer.
    static let controllerDown = ["Unable to contact slurm controller", "Socket timed out", "Zero Bytes were transmitted",
                                 "Munge encode failed", "backup controller in standby"]
}
