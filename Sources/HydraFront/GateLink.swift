import HydraSite
import HydraAccounts
import HydraServers
import HydraSystem
import FoundationEssentials

/// The front's line to hydra-gate's control socket (`GateControl`): events for the site's
/// metrics, and what the admin page and /hydra/metrics read. The gate runs as the web server's
/// account, so its socket must be this process's own; a gate that is down costs a failed
/// connect, never a wait.
package struct GateLink: Sendable {
    package let directory: String

    package init(config: HydraConfig) {
        directory = "\(config.server.runtimeDir)/\(RuntimeDirectory.gateDirectoryName)"
    }

    /// Reports an event; lost, and only that, when the gate is not running.
    package func send(_ event: SiteEvent) {
        guard let json = try? JSONEncoder().encode(event) else { return }
        _ = ask(GateControl.eventPrefix + String(decoding: json, as: UTF8.self))
    }

    /// The metrics in Prometheus text, or nil when the gate does not answer.
    package func metrics() -> [UInt8]? {
        ask(GateControl.metricsCommand)
    }

    /// What the gate saw of each person, or nil when it does not answer.
    package func people() -> [String: PersonActivity]? {
        ask(GateControl.peopleCommand).flatMap { try? JSONDecoder().decode([String: PersonActivity].self, from: Data($0)) }
    }

    /// Whether the gate would connect to the person's Slurm job now (false when it does not answer).
    package func servesJob(of name: UserName) -> Bool {
        ask(GateControl.servingPrefix + name.value) == Array("yes".utf8)
    }

    private func ask(_ line: String) -> [UInt8]? {
        guard let folder = try? DirectoryHandle.open(directory) else { return nil }
        return OwnedSocket.exchange(in: folder, name: GateControl.socketName, ownerUID: ProcessControl.effectiveUserID,
                                    request: Array((line + "\n").utf8), timeoutSeconds: 2, limit: 8 << 20)
    }
}
