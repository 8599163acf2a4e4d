import HydraSite
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

    /// A job as squeue shows it.
    package struct Job: Sendable, Equatable, Codable {
        package var id: String
        /// PENDING, CONFIGURING, RUNNING, COMPLETING, ... (squeue's %T).
        package var state: String
        /// Why it waits ("Resources", "Priority") or "None".
        package var reason: String
        /// The node it runs on, once it runs.
        package var node: String
        /// When it started, or Slurm's estimate while it waits ("N/A" when it has none).
        package var startTime: String
        /// Whose it is, and its name (hydra's: "hydra-NAME").
        package var user: String
        package var name: String

        package enum Phase: Sendable, Equatable { case waiting, running, ending }

        /// Where the job is in its life: every state squeue lists falls into one of three.
        package var phase: Phase {
            switch state {
            case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED":
                .waiting
            case "RUNNING", "RESIZING", "SIGNALING":
                .running
            default:
                .ending
            }
        }

        enum CodingKeys: String, CodingKey { case id, state, reason, node, user, name, startTime = "start_time" }
    }

    static let queueFormat = "--format=%i|%T|%r|%N|%S|%u|%j"

    /// squeue's lines `ID|STATE|REASON|NODE|START|USER|NAME` (queueFormat).
    static func jobs(fromSqueue text: String) -> [Job] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 7, !fields[0].isEmpty, fields[0].allSatisfy(\.isNumber) else { return nil }
            return Job(id: fields[0], state: fields[1], reason: fields[2], node: fields[3], startTime: fields[4], user: fields[5], name: fields[6])
        }
    }

    /// The job, or nil once squeue no longer lists it (it ended).
    package func job(_ id: String) throws(SlurmFailure) -> Job? {
        let result = try run("squeue", ["--noheader", "--jobs=\(id)", Self.queueFormat], acceptFailure: true)
        if result.status != 0 {
            if result.errorText.contains("Invalid job id") { return nil }
            throw .commandFailed(command: "squeue --jobs", status: result.status, error: result.errorText)
        }
        return Self.jobs(fromSqueue: result.outputText).first { $0.id == id }
    }

    /// The jobs of `uid` called `name` that have not ended.
    package func liveJobs(named name: String, uid: UInt32) throws(SlurmFailure) -> [Job] {
        let result = try run("squeue", ["--noheader", "--user=\(uid)", "--name=\(name)", Self.queueFormat])
        return Self.jobs(fromSqueue: result.outputText).filter { $0.phase != .ending }
    }

    /// Submits `script` (a file sbatch reads at once) with `arguments` to it; the job gets
    /// exactly `environment` (sbatch runs with it, and --export=ALL passes it on). Returns the
    /// job's ID.
    package func submit(jobName: String, outputPath: String, workingDirectory: String, script: String, arguments: [String],
                        environment: [String: String]) throws(SlurmFailure) -> String {
        var options = ProcessRunner.Options()
        options.environment = environment
        let sbatch = ["--parsable", "--export=ALL", "--job-name=\(jobName)", "--output=\(outputPath)", "--chdir=\(workingDirectory)"]
            + settings.sbatchArguments + [script] + arguments
        let result = try run("sbatch", sbatch, options: options, acceptFailure: true)
        guard result.status == 0 else {
            let reason = result.errorText.split(separator: "\n").last.map { $0.replacingOccurrences(of: "sbatch: error: ", with: "") }
            throw .submissionRejected(reason: reason ?? "exit status \(result.status)")
        }
        // --parsable: "ID" or "ID;CLUSTER".
        let id = String(result.outputText.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0 != ";" })
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw .unexpectedOutput(command: "sbatch --parsable", output: result.outputText) }
        return id
    }

    /// Cancels these jobs of `uid`; one that has already ended is no error.
    package func cancel(_ ids: [String], uid: UInt32) throws(SlurmFailure) {
        guard !ids.isEmpty else { return }
        let result = try run("scancel", ["--user=\(uid)"] + ids, acceptFailure: true)
        let error = result.errorText.split(separator: "\n").filter { !$0.contains("Invalid job id") && !$0.contains("already completing or completed") }
        if result.status != 0, !error.isEmpty {
            throw .commandFailed(command: "scancel", status: result.status, error: error.joined(separator: "\n"))
        }
    }

    /// The address Slurm reaches `node` at (its NodeAddr), which is where its servers listen.
    package func address(ofNode node: String) throws(SlurmFailure) -> String {
        guard let address = try nodeAddresses(["--nodes=\(node)"])[node] else {
            throw .unexpectedOutput(command: "sinfo --Node", output: "no address for \(node)")
        }
        return address
    }

    /// Every node's address (NodeAddr), by node name; `arguments` narrow sinfo's list.
    package func nodeAddresses(_ arguments: [String] = []) throws(SlurmFailure) -> [String: String] {
        let result = try run("sinfo", ["--noheader", "--Node", "--format=%N|%o"] + arguments)
        var addresses: [String: String] = [:]
        for line in result.outputText.split(separator: "\n") {
            let fields = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.count == 2, !fields[1].isEmpty { addresses[fields[0]] = fields[1] }
        }
        return addresses
    }

    /// Every job squeue lists (all users' that this account may see), in `states` when given.
    package func queue(states: String? = nil) throws(SlurmFailure) -> [Job] {
        let result = try run("squeue", ["--noheader", Self.queueFormat] + (states.map { ["--states=\($0)"] } ?? []))
        return Self.jobs(fromSqueue: result.outputText)
    }

    /// Runs `binDir/name`; a controller that does not answer is its own failure.
    func run(_ name: String, _ arguments: [String], input: [UInt8]? = nil, options: ProcessRunner.Options = ProcessRunner.Options(),
             acceptFailure: Bool = false) throws(SlurmFailure) -> ProcessResult {
        let path = "\(settings.binDir)/\(name)"
        guard FileSystem.isExecutable(path) else { throw .notInstalled(path: path) }
        var options = options
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
