@testable import HydraSite
@testable import HydraAccounts
@testable import HydraCourses
@testable import HydraServers
import Testing
import Foundation
@testable import HydraFront
import HydraTesting

/// The helpers' answers are one type on both sides: what ipynb-launch and addldapuser print
/// (HelperRun.json) is what the front decodes (HelperCalls.Outcome.decode), field for field.
@Suite("The helpers' answers, written by one side and read by the other")
struct HelperAnswerTests {
    static let pin = String(repeating: "5a", count: 32)
    static let job = SlurmClient.Job(id: "42", state: "PENDING", reason: "Resources", node: "", startTime: "N/A", user: "alice", name: "hydra-alice")

    static let starts: [LaunchReport] = [
        .fake(),
        .fake(outcome: .reused, place: .local(socket: "/run/hydra/alice/jupyter.sock", pid: 77, supervisor: .systemd)),
        .fake(place: .job(JobServer(job: "42", node: "node1", address: "10.0.0.5", port: 21000, pin: pin))),
        .fake(outcome: .waiting, place: .job(JobServer(job: "42", pin: pin)), queued: job),
    ]

    @Test("ipynb-launch start's answer reads back as written", arguments: starts)
    func start(_ report: LaunchReport) throws {
        var written = report
        written.sync = [SyncReport(folder: "tutorials", repo: "/srv/course.git", branch: "main", commit: "abc", kept: ["a.ipynb"],
                                   upstreamCopies: ["a.upstream.ipynb"], error: nil)]
        let read = HelperCalls.Outcome.answer(.done, written).decode(LaunchReport.self)
        #expect(read == written)
    }

    @Test("the start's JSON keeps the field names the Python suite and older fronts read")
    func startFieldNames() throws {
        func keys(_ report: LaunchReport) throws -> Set<String> {
            let object = try JSONSerialization.jsonObject(with: Data(HelperRun.json(report) ?? [])) as? [String: Any]
            return Set(object?.keys.map { $0 } ?? [])
        }
        #expect(try keys(Self.starts[0]) == ["user", "base_url", "token", "outcome", "profile", "socket", "pid", "supervisor", "seconds", "sync"])
        #expect(try keys(Self.starts[2]) == ["user", "base_url", "token", "outcome", "profile", "job", "node", "address", "port", "pin", "seconds", "sync"])
        #expect(try keys(Self.starts[3]).isSuperset(of: ["job", "pin", "queued"]))
    }

    @Test("the front takes a job's endpoint only from a complete, pinned answer")
    func jobEndpoint() {
        func endpoint(_ place: ServerPlace) -> JobEndpoint? { if case .job(let job) = place { job.endpoint } else { nil } }
        #expect(endpoint(Self.starts[2].place) == JobEndpoint(job: "42", address: "10.0.0.5", port: 21000, pin: Self.pin))
        #expect(endpoint(Self.starts[3].place) == nil && endpoint(Self.starts[0].place) == nil)
        var forged = JobServer(job: "42", node: "n", address: "10.0.0.5", port: 21000, pin: "not-a-pin")
        #expect(forged.endpoint == nil)
        forged.pin = Self.pin.uppercased()
        #expect(forged.endpoint == nil)
    }

    @Test("addldapuser's answer reads back as written")
    func provision() {
        let report = ProvisionReport.fake(actions: ["created the account"], repairs: ["mode of /run/hydra/alice"],
                                          warnings: ["no tmpfs on this machine"])
        #expect(HelperCalls.Outcome.answer(.done, report).decode(ProvisionReport.self) == report)
    }

    @Test("a helper's failure: the front shows its own message")
    func failure() {
        let outcome = HelperCalls.Outcome.failure(.busy, "the lock stayed taken for 3 s")
        #expect(outcome.message == "the lock stayed taken for 3 s" && outcome.exitStatus == .busy)
        #expect(outcome.decode(HelperRun.ErrorReport.self)?.outcome == "error")
    }

    @Test("a start event of a front older than profiles still counts (no profile)")
    func startEventWithoutProfile() throws {
        let old = try JSONDecoder().decode(SiteEvent.self, from: Data(#"{"start":{"outcome":"started","seconds":1.5}}"#.utf8))
        #expect(old == .start(outcome: "started", seconds: 1.5, profile: nil))
        let new = SiteEvent.start(outcome: "reused", seconds: 0.2, profile: "course")
        #expect(try JSONDecoder().decode(SiteEvent.self, from: JSONEncoder().encode(new)) == new)
    }

    @Test("a server record written before the upgrade still reads (local and Slurm), and a new one reads back")
    func recordOfAnEarlierVersion() throws {
        let local = try JSONDecoder().decode(ServerRecord.self, from: Data(#"{"pid":1234,"token":"t","started":1.5}"#.utf8))
        #expect(local == ServerRecord(.process(1234), token: "t", startedAt: 1.5))
        let slurm = #"{"pid":0,"token":"t","started":2,"job":"42","node":"n1","address":"10.0.0.5","port":21000,"pin":"\#(Self.pin)"}"#
        let job = try JSONDecoder().decode(ServerRecord.self, from: Data(slurm.utf8))
        #expect(job == ServerRecord(.job(JobServer(job: "42", node: "n1", address: "10.0.0.5", port: 21000, pin: Self.pin)), token: "t", startedAt: 2))
        for record in [local, job] {
            #expect(try JSONDecoder().decode(ServerRecord.self, from: JSONEncoder().encode(record)) == record)
        }
        #expect((try? JSONDecoder().decode(ServerRecord.self, from: Data(#"{"token":"t","started":2}"#.utf8))) == nil)
        // Threat: a record the person wrote with a job id that is not Slurm's number never decodes
        // (so it never reaches squeue's or scancel's arguments).
        for id in ["--me", "42;x", "", "4 2"] {
            let forged = #"{"token":"t","started":2,"job":"\#(id)"}"#
            #expect((try? JSONDecoder().decode(ServerRecord.self, from: Data(forged.utf8))) == nil, "\(id)")
        }
    }
}
