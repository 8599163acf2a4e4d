import HydraSite
import HydraServers
import Foundation
import HydraFront
import HydraGate
import HydraSystem
import HydraTesting
import Logging
import NIOPosix
import Testing

/// The site's metrics end to end in this process: a front's `GateLink` reports events over the
/// gate's control socket, and reads them back as Prometheus text and each person's activity.
@Suite("The gate's control socket and the site's metrics", .serialized)
final class SiteMetricsTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-metrics-\(UUID().uuidString)").path
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init() throws {
        try FileManager.default.createDirectory(atPath: "\(base)/.gate", withIntermediateDirectories: true)
    }

    deinit {
        try? group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: base)
    }

    func running() throws -> (Gate, GateLink) {
        let config = try gateTestConfig(base: base, extra: "[[courses]]\nrepo = \"/srv/course.git\"\nfolder = \"tutorials\"")
        let gate = try Gate(config: config, logger: Logger(label: "test"))
        _ = try gate.listenForControl(on: Gate.controlSocketPath(beside: "\(base)/.gate/gate.sock"), group: group)
        return (gate, GateLink(config: config))
    }

    /// "name{labels} value" lines of the exposition, as a dictionary.
    func samples(_ text: String) -> [String: Double] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.reduce(into: [:]) { found, line in
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return }
            found[String(line[..<space])] = value
        }
    }

    @Test func eventsFromTheFrontBecomeCountsAndAHistogram() throws {
        let (_, link) = try running()
        for _ in 0..<3 { link.send(.visit(outcome: "autologin")) }
        link.send(.visit(outcome: "lab"))
        link.send(.start(outcome: "started", seconds: 2.5, profile: "default"))
        link.send(.start(outcome: "started", seconds: 40, profile: "default"))
        link.send(.start(outcome: "reused", seconds: 0.2, profile: "invented"))   // not a configured profile: "other"
        link.send(.start(outcome: "failed", seconds: 1))                          // no answer, no profile
        link.send(.helper(name: "addldapuser", exitStatus: 0))
        link.send(.courseSync(folder: "tutorials", ok: true))
        link.send(.courseSync(folder: "somebody's invention", ok: false))
        link.send(.visit(outcome: "Not\na word {}"))
        link.send(.accountCreated)
        let found = samples(String(decoding: try #require(link.metrics()), as: UTF8.self))
        #expect(found[#"hydra_visits_total{outcome="autologin"}"#] == 3)
        #expect(found[#"hydra_visits_total{outcome="lab"}"#] == 1)
        #expect(found[#"hydra_visits_total{outcome="other"}"#] == 1)
        #expect(found[#"hydra_starts_total{outcome="started",profile="default"}"#] == 2)
        #expect(found[#"hydra_starts_total{outcome="reused",profile="other"}"#] == 1)
        #expect(found[#"hydra_starts_total{outcome="failed",profile="none"}"#] == 1)
        #expect(found["hydra_start_duration_seconds_count"] == 2)           // new servers only
        #expect(found[#"hydra_start_duration_seconds_bucket{le="3.0"}"#] == 1)
        #expect(found[#"hydra_course_syncs_total{course="tutorials",result="ok"}"#] == 1)
        #expect(found[#"hydra_course_syncs_total{course="other",result="error"}"#] == 1)
        #expect(found[#"hydra_helper_exits_total{helper="addldapuser",exit_status="0"}"#] == 1)
        #expect(found["hydra_accounts_created_total"] == 1)
        #expect(found[#"hydra_running_servers{profile="default"}"#] == 0 && found["hydra_starts_in_progress"] == 0)
    }

    @Test("the front's warm path asks whether the gate would go to a job: never on a site without Slurm, nor for a bad name")
    func servingAJobIsNoWithoutACluster() throws {
        let (_, link) = try running()
        #expect(!link.servesJob(of: try UserName("ada")))
        #expect(link.metrics() != nil)  // the gate answered; "no" was its word
    }

    @Test func serversOfSlurmJobsCountBesideTheLocalSockets() throws {
        let (gate, _) = try running()
        let text = String(decoding: gate.metrics.exposition(jobOwners: ["ada", "bea", "ada"]), as: UTF8.self)
        #expect(samples(text)[#"hydra_running_servers{profile="default"}"#] == 2)
    }

    @Test func theBuildInfoNamesTheChangelogsVersion() throws {
        let (_, link) = try running()
        let found = samples(String(decoding: try #require(link.metrics()), as: UTF8.self))
        #expect(found[#"hydra_build_info{version="\#(try Changelog.topVersion())"}"#] == 1)
        #expect(found.keys.filter { $0.hasPrefix("hydra_build_info") }.count == 1)
    }

    @Test func aLineThatIsNotAnEventChangesNothing() throws {
        let (_, link) = try running()
        let before = String(decoding: try #require(link.metrics()), as: UTF8.self)
        let folder = try DirectoryHandle.open("\(base)/.gate")
        for junk in ["event {not json}", "event " + String(repeating: "x", count: 20_000), "delete everything"] {
            _ = OwnedSocket.exchange(in: folder, name: GateControl.socketName, ownerUID: getuid(), request: Array((junk + "\n").utf8),
                                     timeoutSeconds: 2)
        }
        #expect(String(decoding: try #require(link.metrics()), as: UTF8.self) == before)
    }

    @Test func theAdminPageLearnsEachPersonsActivityFromTheGate() throws {
        let (gate, link) = try running()
        let alice = try UserName("alice")
        #expect(gate.admission.admit(alice, .websocket) == nil)
        #expect(gate.admission.admit(alice, .request) == nil)
        gate.admission.release(alice, .request)
        let activity = try #require(link.people()?["alice"])
        #expect(activity.openWebsockets == 1 && activity.requestsUnderWay == 0)
        #expect(abs(activity.lastActivity - Date().timeIntervalSince1970) < 60)
    }
}
