import HydraSite
import HydraServers
import HydraSystem
import Logging
import FoundationEssentials
import NIOCore
import NIOPosix
import Synchronization

/// What hydra-gate knows of the Slurm cluster (`[server] backend = "slurm"`): the nodes'
/// addresses and the running jobs, from one squeue every few seconds (and sinfo once a minute,
/// or when a job runs on a node it has not listed) on a thread of its own, never per request nor
/// on an event loop: its cost to slurmctld is what it costs whatever the visits. The gate connects to a person's
/// endpoint (written by the front) only when it is one of the nodes, within `port_range`, and
/// the person's own running job is on that node, or the endpoint is newer than the last look
/// (ipynb-launch has just seen the job run, as the person).
final class ClusterView: Sendable {
    struct Snapshot: Sendable {
        /// When the look began (seconds since 1970): a job started after it may be missing.
        var taken: Double
        var addresses: [String: String]
        /// When sinfo last listed the nodes' addresses.
        var addressesTaken: Double
        var jobs: [String: SlurmClient.Job]
    }

    let client: SlurmClient
    let portRange: ClosedRange<Int>
    let logger: Logger
    static let defaultIntervalSeconds: Int64 = 3
    /// Nodes and their addresses change rarely: sinfo at most this often, unless a job runs on a node not listed.
    static let addressesIntervalSeconds = 60.0
    let intervalSeconds: Int64
    /// Where sinfo and squeue run: held here for as long as the view lives (a pool that is
    /// gone cancels its work without a word).
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let latest = Mutex<Snapshot?>(nil)
    private let lastFailure = Mutex<String?>(nil)
    /// Whether a look is queued or under way.
    private let looking = Atomic<Bool>(false)

    init(settings: SlurmSettings, logger: Logger, intervalSeconds: Int64 = ClusterView.defaultIntervalSeconds) {
        var client = SlurmClient(settings: settings)
        client.timeoutSeconds = 10
        self.client = client
        self.portRange = settings.portRange
        self.logger = logger
        self.intervalSeconds = intervalSeconds
    }

    /// Looks now, then every few seconds on a thread of its own, for as long as the process runs.
    func start(on loop: EventLoop) {
        pool.start()
        refresh()
        loop.scheduleRepeatedTask(initialDelay: .seconds(intervalSeconds), delay: .seconds(intervalSeconds)) { [self] _ in
            lookUnlessLooking()
        }
    }

    /// Queues a look on the view's thread, unless the last one is still queued or under way: a
    /// slow slurmctld gets one look at a time from the gate, never a growing queue of them.
    @discardableResult
    func lookUnlessLooking() -> Bool {
        guard looking.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return false }
        pool.submit { [self] state in
            defer { looking.store(false, ordering: .releasing) }
            if state == .active { refresh() }
        }
        return true
    }

    func refresh() {
        let taken = Date().timeIntervalSince1970
        do throws(SlurmFailure) {
            let jobs = Dictionary(try client.queue(states: "RUNNING").map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let known = latest.withLock { $0 }.flatMap { last in
                taken - last.addressesTaken < Self.addressesIntervalSeconds && jobs.values.allSatisfy { last.addresses[$0.node] != nil }
                    ? (last.addresses, last.addressesTaken) : nil
            }
            let (addresses, addressesTaken) = if let known { known } else { (try client.nodeAddresses(), taken) }
            let snapshot = Snapshot(taken: taken, addresses: addresses, addressesTaken: addressesTaken, jobs: jobs)
            latest.withLock { $0 = snapshot }
            if lastFailure.withLock({ $0.take() }) != nil { logger.info("Slurm answers again") }
        } catch {
            // Kept: the last good look stays, and only a change of failure is logged.
            let text = error.description
            if lastFailure.withLock({ previous in defer { previous = text }; return previous != text }) {
                logger.error("cannot look at the Slurm cluster: \(text)")
            }
        }
    }

    /// The people whose server's job runs, as of the last look.
    func serverJobOwners() -> [String] {
        latest.withLock { $0 }?.jobs.values.filter { $0.name == SlurmBackend.jobName(for: $0.user) }.map(\.user) ?? []
    }

    /// Whether the gate may connect to `endpoint` for `person`.
    func allows(_ endpoint: JobEndpoint, written: Double, for person: UserName) -> Bool {
        guard portRange.contains(endpoint.port), let snapshot = latest.withLock({ $0 }),
              snapshot.addresses.values.contains(endpoint.address) else { return false }
        if let job = snapshot.jobs[endpoint.job] {
            return job.user == person.value && snapshot.addresses[job.node] == endpoint.address
        }
        return written > snapshot.taken
    }
}
