@testable import HydraSite
@testable import HydraServers
import Testing

/// The server's life, rule by rule (ServerLifecycle): what a start does with what the record in
/// the runtime directory names, for both backends, and what each look at a starting server
/// decides. The record is the person's to write, so each row is what the system showed.
@Suite("The server lifecycle, case by case")
struct ServerLifecycleTests {
    typealias Facts = ServerLifecycle.ProcessFacts
    typealias Job = ServerLifecycle.JobFacts

    struct StartCase: CustomTestStringConvertible, Sendable {
        let what: String
        let sighting: ServerLifecycle.Sighting
        var profileMatches = true
        var homeHasRoom = true
        let expected: ServerLifecycle.StartAction
        var testDescription: String { what }
    }

    static let dead = Facts(alive: false, ownedByPerson: false, startedByHydra: false, answers: false)
    static let foreign = Facts(alive: true, ownedByPerson: false, startedByHydra: false, answers: false)
    static let unmarked = Facts(alive: true, ownedByPerson: true, startedByHydra: false, answers: false)
    static let silent = Facts(alive: true, ownedByPerson: true, startedByHydra: true, answers: false)

    static let startCases: [StartCase] = [
        // Either backend.
        StartCase(what: "first visit: no record", sighting: .noRecord, expected: .launch(.noServer)),
        StartCase(what: "no record and a full home", sighting: .noRecord, homeHasRoom: false, expected: .refuse(.homeFull)),
        StartCase(what: "the site switched backend under a running server", sighting: .otherBackend, expected: .launch(.otherBackend)),
        // Local servers.
        StartCase(what: "local: the person's server answers", sighting: .process(.serving), expected: .reuse),
        StartCase(what: "local: a start that lost the race finds the winner's server", sighting: .process(.serving), expected: .reuse),
        StartCase(what: "local: answering, with a full home (reuse needs no room)", sighting: .process(.serving), homeHasRoom: false,
                  expected: .reuse),
        StartCase(what: "local: stale record, the process ended (a reboot, an OOM kill)", sighting: .process(dead),
                  expected: .launch(.processEnded)),
        StartCase(what: "local: the recorded PID is now another account's process", sighting: .process(foreign),
                  expected: .launch(.processNotThePersons)),
        StartCase(what: "local: forged record naming the person's own shell", sighting: .process(unmarked),
                  expected: .launch(.processNotHydras)),
        StartCase(what: "local: hydra's server, hung", sighting: .process(silent), expected: .launch(.notAnswering)),
        StartCase(what: "local: hung server and a full home", sighting: .process(silent), homeHasRoom: false, expected: .refuse(.homeFull)),
        StartCase(what: "local: dead PID and a full home", sighting: .process(dead), homeHasRoom: false, expected: .refuse(.homeFull)),
        // Slurm jobs.
        StartCase(what: "slurm: the job runs where recorded and its server answers", sighting: .job(.serving), expected: .reuse),
        StartCase(what: "slurm: a queued job an earlier visit submitted",
                  sighting: .job(Job(phase: .waiting, endpoint: .notYet, portAllowed: false, pinned: true, answers: false)), expected: .resume),
        StartCase(what: "slurm: a job just running, its server not listening yet",
                  sighting: .job(Job(phase: .running, endpoint: .notYet, portAllowed: false, pinned: true, answers: false)), expected: .resume),
        StartCase(what: "slurm: a start that lost the race finds the winner's queued job, with a full home",
                  sighting: .job(Job(phase: .waiting, endpoint: .notYet, portAllowed: false, pinned: true, answers: false)),
                  homeHasRoom: false, expected: .resume),
        StartCase(what: "slurm: the job is no longer in the queue (ended, or never the person's)",
                  sighting: .job(Job(phase: nil, endpoint: .matchesSlurm, answers: false)), expected: .launch(.jobEnded)),
        StartCase(what: "slurm: a queued job that vanished (scancel by the admin)",
                  sighting: .job(Job(phase: nil, endpoint: .notYet, answers: false)), expected: .launch(.jobEnded)),
        StartCase(what: "slurm: the time limit was reached (COMPLETING, TIMEOUT)",
                  sighting: .job(Job(phase: .ending, endpoint: .matchesSlurm, answers: false)), expected: .launch(.jobEnding)),
        StartCase(what: "slurm: the job ends while still queued",
                  sighting: .job(Job(phase: .ending, endpoint: .notYet, answers: false)), expected: .launch(.jobEnding)),
        StartCase(what: "slurm: running on another node than recorded (the recorded node vanished, requeued)",
                  sighting: .job(Job(phase: .running, endpoint: .elsewhere, answers: false)), expected: .launch(.jobElsewhere)),
        StartCase(what: "slurm: a serving job requeued and waiting again",
                  sighting: .job(Job(phase: .waiting, endpoint: .matchesSlurm, answers: false)), expected: .launch(.jobElsewhere)),
        StartCase(what: "slurm: forged record pointing the token at another address",
                  sighting: .job(Job(phase: .running, endpoint: .elsewhere, answers: false)), expected: .launch(.jobElsewhere)),
        StartCase(what: "slurm: forged record with a port outside port_range",
                  sighting: .job(Job(phase: .running, endpoint: .matchesSlurm, portAllowed: false, answers: false)),
                  expected: .launch(.portNotAllowed)),
        StartCase(what: "slurm: a job of an older hydra, without a pin (its server speaks in clear)",
                  sighting: .job(Job(phase: .running, endpoint: .matchesSlurm, pinned: false, answers: false)), expected: .launch(.unpinned)),
        StartCase(what: "slurm: the job runs where recorded, its server hung or shows another certificate",
                  sighting: .job(Job(phase: .running, endpoint: .matchesSlurm, answers: false)), expected: .launch(.notAnswering)),
        StartCase(what: "slurm: the job ended and the home is full",
                  sighting: .job(Job(phase: nil, endpoint: .matchesSlurm, answers: false)), homeHasRoom: false, expected: .refuse(.homeFull)),
        // Profiles.
        StartCase(what: "profiles: the person chose another profile; the answering server gives way", sighting: .process(.serving),
                  profileMatches: false, expected: .launch(.profileChanged)),
        StartCase(what: "profiles: another profile chosen while a job of the old one is queued",
                  sighting: .job(Job(phase: .waiting, endpoint: .notYet, answers: false)), profileMatches: false,
                  expected: .launch(.profileChanged)),
        StartCase(what: "profiles: another profile chosen, and the home is full", sighting: .process(.serving), profileMatches: false,
                  homeHasRoom: false, expected: .refuse(.homeFull)),
        StartCase(what: "profiles: the old profile's server had died anyway", sighting: .process(dead), profileMatches: false,
                  expected: .launch(.processEnded)),
        StartCase(what: "profiles: a local server, and a Slurm profile chosen (the record is the other backend's)",
                  sighting: .otherBackend, profileMatches: false, expected: .launch(.otherBackend)),
    ]

    @Test("a start decides", arguments: startCases)
    func start(_ row: StartCase) {
        #expect(ServerLifecycle.decide(.init(row.sighting, profileMatches: row.profileMatches, homeHasRoom: row.homeHasRoom)) == row.expected)
    }

    struct LookCase: CustomTestStringConvertible, Sendable {
        let what: String
        var elapsed = 1.0
        let server: ServerLifecycle.StartingServer
        let expected: ServerLifecycle.Step
        var testDescription: String { what }
    }

    static let timeout = 60.0
    static let newJob = 10.0

    static let lookCases: [LookCase] = [
        LookCase(what: "local: answers", server: .process(exited: false, answers: true), expected: .serving),
        LookCase(what: "local: not yet", server: .process(exited: false, answers: false),
                 expected: .lookAgain(after: ServerLifecycle.lookInterval.process)),
        LookCase(what: "local: exited during start-up (a bad config, a kernel of its own)", server: .process(exited: true, answers: false),
                 expected: .exited),
        LookCase(what: "local: exited, even past the time limit", elapsed: 61, server: .process(exited: true, answers: false), expected: .exited),
        LookCase(what: "local: no answer within start_timeout_seconds", elapsed: 60, server: .process(exited: false, answers: false),
                 expected: .timedOut),
        LookCase(what: "local: answers on the last look", elapsed: 60, server: .process(exited: false, answers: true), expected: .serving),
        LookCase(what: "slurm: queued, within the first visit's patience", server: .job(phase: .waiting, queuePatience: newJob, answers: false),
                 expected: .lookAgain(after: ServerLifecycle.lookInterval.queuedJob)),
        LookCase(what: "slurm: queued past the first visit's patience", elapsed: 10,
                 server: .job(phase: .waiting, queuePatience: newJob, answers: false), expected: .queued),
        LookCase(what: "slurm: a later visit looks in only briefly", elapsed: 1, server: .job(phase: .waiting, queuePatience: 1, answers: false),
                 expected: .queued),
        LookCase(what: "slurm: queued at the time limit keeps its place", elapsed: 60,
                 server: .job(phase: .waiting, queuePatience: 100, answers: false), expected: .queued),
        LookCase(what: "slurm: running, server not answering yet", server: .job(phase: .running, queuePatience: newJob, answers: false),
                 expected: .lookAgain(after: ServerLifecycle.lookInterval.runningJob)),
        LookCase(what: "slurm: running and answering", server: .job(phase: .running, queuePatience: newJob, answers: true), expected: .serving),
        LookCase(what: "slurm: running, no answer within start_timeout_seconds", elapsed: 60,
                 server: .job(phase: .running, queuePatience: newJob, answers: false), expected: .timedOut),
        LookCase(what: "slurm: the job ended while starting (its server failed)", server: .job(phase: .ending, queuePatience: newJob, answers: false),
                 expected: .jobLost),
        LookCase(what: "slurm: the job vanished from the queue", server: .job(phase: nil, queuePatience: newJob, answers: false), expected: .jobLost),
    ]

    @Test("a look at a starting server decides", arguments: lookCases)
    func look(_ row: LookCase) {
        let look = ServerLifecycle.Look(elapsed: row.elapsed, timeout: Self.timeout, server: row.server)
        #expect(ServerLifecycle.nextStep(look) == row.expected)
    }

    @Test("the table has a row for every launch reason")
    func everyReasonHasARow() {
        let reasons = Set(Self.startCases.compactMap { row -> String? in
            if case .launch(let reason) = row.expected { reason.rawValue } else { nil }
        })
        let all: [ServerLifecycle.LaunchReason] = [.noServer, .otherBackend, .processEnded, .processNotThePersons, .processNotHydras,
                                                   .notAnswering, .jobEnded, .jobEnding, .jobElsewhere, .portNotAllowed, .unpinned,
                                                   .profileChanged]
        #expect(reasons == Set(all.map(\.rawValue)))
        #expect(Self.startCases.count + Self.lookCases.count >= 30)
    }

    struct ProfileCase: CustomTestStringConvertible, Sendable {
        let what: String
        let asked: String?
        let recorded: String?
        let allowed: [String]
        let expected: Result<String, ServerLifecycle.ProfileRefusal>
        var testDescription: String { what }
    }

    static func profile(_ name: String) -> Profile {
        Profile(name: name, title: name, description: "", backend: .local, pythonEnv: "/opt/hydra/jupyter", limits: ResourceLimits(),
                slurm: nil, groups: [], isDefault: name == "course")
    }

    static let profileCases: [ProfileCase] = [
        ProfileCase(what: "one allowed, nothing asked: it", asked: nil, recorded: nil, allowed: ["course"], expected: .success("course")),
        ProfileCase(what: "several allowed, nothing asked or running: the default", asked: nil, recorded: nil, allowed: ["research", "course"],
                    expected: .success("course")),
        ProfileCase(what: "no default among those allowed: the first", asked: nil, recorded: nil, allowed: ["research", "gpu"],
                    expected: .success("research")),
        ProfileCase(what: "a visit's sync keeps the running server's profile", asked: nil, recorded: "research", allowed: ["course", "research"],
                    expected: .success("research")),
        ProfileCase(what: "the running server's profile no longer allowed (left the group): the default", asked: nil, recorded: "research",
                    allowed: ["course"], expected: .success("course")),
        ProfileCase(what: "asked for one allowed", asked: "research", recorded: "course", allowed: ["course", "research"],
                    expected: .success("research")),
        ProfileCase(what: "threat: asked for one the person's groups do not allow", asked: "research", recorded: nil, allowed: ["course"],
                    expected: .failure(.notAllowed("research"))),
        ProfileCase(what: "threat: asked for one that does not exist", asked: "../etc", recorded: nil, allowed: ["course"],
                    expected: .failure(.notAllowed("../etc"))),
        ProfileCase(what: "threat: a forged record naming a profile not allowed is not kept", asked: nil, recorded: "research",
                    allowed: ["course"], expected: .success("course")),
        ProfileCase(what: "a site without profiles: the implicit one", asked: nil, recorded: nil, allowed: [Profile.implicitName],
                    expected: .success(Profile.implicitName)),
        ProfileCase(what: "no profile open to the person's groups", asked: nil, recorded: nil, allowed: [], expected: .failure(.noneAllowed)),
    ]

    @Test("a start's profile", arguments: profileCases)
    func chooseProfile(_ row: ProfileCase) {
        let chosen = Result { () throws(ServerLifecycle.ProfileRefusal) -> String in
            try ServerLifecycle.chooseProfile(asked: row.asked, recorded: row.recorded, allowed: row.allowed.map(Self.profile)).name
        }
        #expect(chosen == row.expected)
    }

    @Test("a stop ends what still runs or holds a place in the queue, and nothing else")
    func stopEnds() {
        #expect(ServerLifecycle.Sighting.process(.serving).stillRuns && ServerLifecycle.Sighting.process(Self.silent).stillRuns)
        #expect(!ServerLifecycle.Sighting.process(Self.foreign).stillRuns && !ServerLifecycle.Sighting.process(Self.dead).stillRuns)
        #expect(ServerLifecycle.Sighting.job(Job(phase: .waiting, endpoint: .notYet, answers: false)).stillRuns)
        #expect(!ServerLifecycle.Sighting.job(Job(phase: nil, endpoint: .notYet, answers: false)).stillRuns)
        #expect(!ServerLifecycle.Sighting.noRecord.stillRuns && !ServerLifecycle.Sighting.otherBackend.stillRuns)
    }
}
