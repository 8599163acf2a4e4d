import HydraSite
import HydraAccounts
import HydraServers
import CoreMetrics
import FoundationEssentials
import HydraSystem
import HydraVersion
import Prometheus

/// The site's metrics, kept by the one long-lived process: what the front reports (`SiteEvent`,
/// through swift-metrics), what the gate itself refuses, and gauges read when scraped. Served
/// as Prometheus text through the front's /hydra/metrics (admins, or the scrapers' addresses).
package final class SiteMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let census: ServerCensus
    private let admission: Admission
    private let frontDirectory: String
    private let startSlots: Int
    private let courseFolders: Set<String>
    private let profileNames: Set<String>

    static let startDuration = "hydra_start_duration_seconds"

    package init(config: HydraConfig, admission: Admission) {
        var factory = PrometheusMetricsFactory(registry: registry)
        // A server starts in 1-3 s on an idle machine and waits up to server.start_timeout_seconds.
        factory.valueHistogramBuckets = [Self.startDuration: [0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 90, 180]]
        self.factory = factory
        census = ServerCensus(config: config)
        self.admission = admission
        frontDirectory = "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)"
        startSlots = config.server.maxConcurrentStarts
        courseFolders = Set(config.courses.map(\.folder))
        profileNames = Set(config.profiles.map(\.name))
    }

    /// Counts one event from the front. Its words become label values only when they look like
    /// an outcome or name a configured course, so the set of series stays bounded.
    package func record(_ event: SiteEvent) {
        switch event {
        case .visit(let outcome):
            count("hydra_visits_total", [("outcome", Self.word(outcome))])
        case .start(let outcome, let seconds, let profile):
            let label = profile.map { profileNames.contains($0) ? $0 : "other" } ?? "none"
            count("hydra_starts_total", [("outcome", Self.word(outcome)), ("profile", label)])
            if outcome == LaunchReport.Outcome.started.rawValue {
                Recorder(label: Self.startDuration, dimensions: [], aggregate: true, factory: factory).record(max(0, seconds))
            }
        case .startDeferred:
            count("hydra_starts_deferred_total")
        case .helper(let name, let exitStatus):
            count("hydra_helper_exits_total", [("helper", Self.word(name)), ("exit_status", "\(exitStatus)")])
        case .courseSync(let folder, let ok):
            count("hydra_course_syncs_total", [("course", courseFolders.contains(folder) ? folder : "other"), ("result", ok ? "ok" : "error")])
        case .accountCreated:
            count("hydra_accounts_created_total")
        case .ldapUnavailable:
            count("hydra_ldap_errors_total")
        }
    }

    /// A request or websocket the gate refused (429 for the person's limit, 503 for the site's).
    func recordRefusal(_ kind: Admission.Kind, _ refusal: Admission.Refusal) {
        let reason = switch refusal {
        case .personLimit: "person_limit"
        case .siteLimit: "site_limit"
        }
        count("hydra_gate_refusals_total", [("kind", kind.rawValue), ("reason", reason)])
    }

    /// A request to a Slurm job's server sent over a kept connection, or over a new one (its TLS
    /// handshake included).
    func recordJobConnection(kept: Bool) {
        count("hydra_gate_job_requests_total", [("connection", kept ? "kept" : "new")])
    }

    /// The Prometheus text, with the gauges read now. `jobOwners`: the people whose server's
    /// Slurm job runs (they have no socket on this machine).
    package func exposition(jobOwners: [String] = []) -> [UInt8] {
        // The usual Prometheus idiom: 1, labelled with the version this gate was built as.
        gauge("hydra_build_info", 1, [("version", HydraBuild.version)])
        for (profile, running) in census.serversByProfile(jobOwners: jobOwners) {
            gauge("hydra_running_servers", running, [("profile", profile)])
        }
        gauge("hydra_starts_in_progress", startsInProgress())
        let usage = admission.siteUsage
        gauge("hydra_gate_open_websockets", usage.websockets)
        gauge("hydra_gate_requests_under_way", usage.requests)
        return registry.emitToBuffer()
    }

    /// The start slots (`<runtime_dir>/.front/slot-N`) that a front process holds locked now.
    func startsInProgress() -> Int {
        let inodes = (0..<startSlots).compactMap { FileStatus.following("\(frontDirectory)/slot-\($0)")?.inode }
        return ProcessTable.flocksHeld(onInodes: Set(inodes))
    }

    private func count(_ name: String, _ dimensions: [(String, String)] = []) {
        Counter(label: name, dimensions: dimensions, factory: factory).increment()
    }

    private func gauge(_ name: String, _ value: Int, _ dimensions: [(String, String)] = []) {
        Meter(label: name, dimensions: dimensions, factory: factory).set(value)
    }

    /// `text` as a label value if it is a short lower-case word, else "other".
    static func word(_ text: String) -> String {
        text.count <= 40 && !text.isEmpty && text.allSatisfy({ ($0.isLetter && $0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "-" || $0 == "_" || $0 == " " })
            ? text : "other"
    }
}
