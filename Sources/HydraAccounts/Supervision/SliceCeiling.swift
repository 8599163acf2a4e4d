import HydraSite
import HydraSystem

/// The ceiling on everything a person runs on this machine under systemd: their
/// `user-UID.slice` holds their systemd manager (with the server's unit and any unit they start
/// themselves with `systemd-run --user`) and their ssh sessions. The server's own unit carries
/// its profile's limits, which the person could ask their manager to raise for a unit of their
/// own; the slice's limits only root can change. addldapuser sets them (`systemctl
/// set-property`, kept across reboots) to the most the person's profiles allow
/// (`HydraConfig.ceiling`), and records what it set in a root-owned file the front reads, to
/// call addldapuser again when the site's profiles or the person's groups change it.
package struct SliceCeiling: Sendable, Equatable {
    package let uid: UInt32
    package let limits: ResourceLimits

    package init(uid: UInt32, limits: ResourceLimits) {
        self.uid = uid
        self.limits = limits
    }

    package var unit: String { "user-\(uid).slice" }

    /// Every property, those without a limit reset ("infinity", or an empty CPUQuota), so that a
    /// ceiling lowered or lifted by the site replaces the one before.
    package var properties: [String] {
        ["MemoryMax=\(limits.memoryMaxBytes.map(String.init) ?? "infinity")",
         "CPUQuota=\(limits.cpuQuotaPercent.map { "\($0)%" } ?? "")",
         "TasksMax=\(limits.tasksMax.map(String.init) ?? "infinity")"]
    }

    /// The record's one line: the slice and what it was given.
    var record: String { ([unit] + properties).joined(separator: " ") + "\n" }

    /// Where addldapuser records a person's ceiling (world-readable: the front compares it).
    package static func recordPath(stateDir: String, name: UserName) -> String { "\(stateDir)/ceilings/\(name.value)" }

    /// Whether the person's slice has this ceiling, as root last set it.
    package func isRecorded(stateDir: String, name: UserName) -> Bool {
        FileSystem.readText(Self.recordPath(stateDir: stateDir, name: name), maxBytes: 4096) == record
    }

    /// Sets the slice's properties (as root), then records them; the record is written only
    /// once systemd has taken them.
    package func apply(stateDir: String, name: UserName, run: (String, [String]) throws -> Void) throws {
        try run("/usr/bin/systemctl", ["set-property", unit] + properties)
        let state = try DirectoryHandle.open(stateDir, createMode: 0o755)
        let records = try state.subdirectory("ceilings", createMode: 0o755)
        let staging = try state.subdirectory("staging", createMode: 0o700)
        try records.writeAtomically(name.value, Array(record.utf8), staging: staging, mode: 0o644)
    }
}
