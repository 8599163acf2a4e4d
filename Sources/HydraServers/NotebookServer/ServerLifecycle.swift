import HydraSite

/// The rules of a person's server's life, for both backends, as pure decisions in the shape of
/// `TutorialSync.decide`: the backend observes (what the record names, as facts), the
/// decision says what to do, and the backend and `ServerManager` act. Tested as a table
/// (ServerLifecycleTests); the Python suite shows the same rules end to end.
///
/// - `decide(_:)`: what a start does with what the record in the runtime directory names, under
///   the person's lock (so of concurrent starts, the first launches and the others find its
///   server): reuse it, wait for it (a job still starting), or end whatever is left and launch.
/// - `nextStep(_:)`: at each look while a launched (or resumed) server starts: serving, still
///   queued, keep looking, failed, or timed out.
/// - `chooseProfile(asked:recorded:allowed:)`: which of the site's profiles a start uses.
package enum ServerLifecycle {
    // MARK: the profile

    package enum ProfileRefusal: Error, Sendable, Equatable {
        /// Asked for a profile the person may not use (or one the site does not have).
        case notAllowed(String)
        /// The person's groups allow no profile at all.
        case noneAllowed
    }

    /// The profile a start uses: the one asked for (only one the person's groups allow: the
    /// person can run ipynb-launch themselves with any argument), else the running server's
    /// (a visit's sync must not replace it), else the default of those allowed.
    package static func chooseProfile(asked: String?, recorded: String?, allowed: [Profile]) throws(ProfileRefusal) -> Profile {
        if let asked {
            guard let profile = allowed.first(where: { $0.name == asked }) else { throw .notAllowed(asked) }
            return profile
        }
        if let profile = allowed.first(where: { $0.name == recorded ?? Profile.implicitName }) { return profile }
        guard let profile = HydraConfig.defaultProfile(of: allowed) else { throw .noneAllowed }
        return profile
    }

    // MARK: a start

    /// What the backend found of the server the record names. The record is in a folder the
    /// person controls, so every fact is what the system says, never what the record claims.
    package enum Sighting: Sendable, Equatable {
        /// No record, or one that does not decode.
        case noRecord
        /// A record of the other backend (the site changed `server.backend`).
        case otherBackend
        /// A local server's process.
        case process(ProcessFacts)
        /// A Slurm job.
        case job(JobFacts)
    }

    /// A local server, checked in this order; each fact is false once an earlier one is.
    package struct ProcessFacts: Sendable, Equatable {
        /// The recorded PID is a live process.
        package var alive: Bool
        /// It runs as the person (a reused PID may be anyone's).
        package var ownedByPerson: Bool
        /// Its command line carries the marker of every server hydra starts for this person.
        package var startedByHydra: Bool
        /// It answers an authenticated `api/status` on the person's socket.
        package var answers: Bool

        package init(alive: Bool, ownedByPerson: Bool, startedByHydra: Bool, answers: Bool) {
            (self.alive, self.ownedByPerson, self.startedByHydra, self.answers) = (alive, ownedByPerson, startedByHydra, answers)
        }

        package static let serving = Self(alive: true, ownedByPerson: true, startedByHydra: true, answers: true)
    }

    /// A Slurm job, as squeue and the job's server show it.
    package struct JobFacts: Sendable, Equatable {
        /// Where squeue has the job; nil when it lists it no more (ended, or never the person's).
        package var phase: SlurmClient.Job.Phase?
        /// What the record says of where the server listens, against Slurm.
        package var endpoint: Endpoint
        /// The recorded port is one of `[slurm] port_range`.
        package var portAllowed: Bool
        /// The record holds a well-formed pin (a job of an older hydra has none, and is never trusted).
        package var pinned: Bool
        /// The server at the recorded endpoint shows the pinned certificate and answers the token.
        package var answers: Bool

        package enum Endpoint: Sendable, Equatable {
            /// None recorded yet: the job was queued or starting when the record was written.
            case notYet
            /// The recorded node is the job's, and its address is Slurm's address for it.
            case matchesSlurm
            /// Another node or address than Slurm's (the job moved, a requeue, or a forged record).
            case elsewhere
        }

        package init(phase: SlurmClient.Job.Phase?, endpoint: Endpoint, portAllowed: Bool = true, pinned: Bool = true, answers: Bool) {
            (self.phase, self.endpoint, self.portAllowed, self.pinned, self.answers) = (phase, endpoint, portAllowed, pinned, answers)
        }

        package static let serving = Self(phase: .running, endpoint: .matchesSlurm, answers: true)
    }

    /// What a start observes before it decides.
    package struct Observation: Sendable, Equatable {
        package var sighting: Sighting
        /// The recorded server runs the profile this start uses.
        package var profileMatches: Bool
        /// The home has room for a server to start (Jupyter writes there as it starts).
        package var homeHasRoom: Bool

        package init(_ sighting: Sighting, profileMatches: Bool = true, homeHasRoom: Bool = true) {
            (self.sighting, self.profileMatches, self.homeHasRoom) = (sighting, profileMatches, homeHasRoom)
        }
    }

    /// Why a start launches a new server (logged, and shown in the server's log).
    package enum LaunchReason: String, Sendable, Equatable {
        case noServer = "no server was recorded"
        case otherBackend = "the recorded server ran under the other backend"
        case processEnded = "the recorded server's process has ended"
        case processNotThePersons = "the recorded PID is another account's process"
        case processNotHydras = "the recorded PID is not a server hydra started"
        case notAnswering = "the recorded server does not answer"
        case jobEnded = "the recorded job is no longer in Slurm's queue"
        case jobEnding = "the recorded job is ending (time limit, cancelled, failed)"
        case jobElsewhere = "the record names another node or address than Slurm's for its job"
        case portNotAllowed = "the recorded port is outside slurm.port_range"
        case unpinned = "the recorded job has no certificate pin"
        case profileChanged = "the person chose another profile"
    }

    /// What a start does.
    package enum StartAction: Sendable, Equatable {
        /// The recorded server is the person's and answers: keep it.
        case reuse
        /// The recorded job is queued or starting: wait for it rather than start another.
        case resume
        /// End everything of this person's that hydra started (also servers no record names),
        /// forget the record, and launch a new server.
        case launch(LaunchReason)
        /// Start nothing, and leave everything as it is (a serving server keeps serving).
        case refuse(Refusal)
    }

    package enum Refusal: Sendable, Equatable {
        case homeFull
    }

    package static func decide(_ observation: Observation) -> StartAction {
        let kept = decideForRecord(observation.sighting)
        let reason: LaunchReason
        switch kept {
        case .reuse, .resume:
            // A server of another profile, running or queued, gives way to the chosen one.
            guard !observation.profileMatches else { return kept }
            reason = .profileChanged
        case .launch(let why):
            reason = why
        case .refuse:
            return kept
        }
        return observation.homeHasRoom ? .launch(reason) : .refuse(.homeFull)
    }

    /// What the record's server allows, before the profile and the home are considered.
    private static func decideForRecord(_ sighting: Sighting) -> StartAction {
        let reason: LaunchReason
        switch sighting {
        case .noRecord:
            reason = .noServer
        case .otherBackend:
            reason = .otherBackend
        case .process(let process):
            switch process {
            case _ where !process.alive: reason = .processEnded
            case _ where !process.ownedByPerson: reason = .processNotThePersons
            case _ where !process.startedByHydra: reason = .processNotHydras
            case _ where !process.answers: reason = .notAnswering
            default: return .reuse
            }
        case .job(let job):
            switch (job.phase, job.endpoint) {
            case (nil, _): reason = .jobEnded
            case (.ending?, _): reason = .jobEnding
            case (.waiting?, .notYet), (.running?, .notYet): return .resume
            // A job with an endpoint was serving: back in the queue it was requeued elsewhere.
            case (.waiting?, _), (.running?, .elsewhere): reason = .jobElsewhere
            case (.running?, .matchesSlurm):
                switch job {
                case _ where !job.portAllowed: reason = .portNotAllowed
                case _ where !job.pinned: reason = .unpinned
                case _ where !job.answers: reason = .notAnswering
                default: return .reuse
                }
            }
        }
        return .launch(reason)
    }

    // MARK: waiting for a start

    /// One look at a starting server.
    package struct Look: Sendable, Equatable {
        /// Seconds since this wait began.
        package var elapsed: Double
        /// `server.start_timeout_seconds`.
        package var timeout: Double
        package var server: StartingServer

        package init(elapsed: Double, timeout: Double, server: StartingServer) {
            (self.elapsed, self.timeout, self.server) = (elapsed, timeout, server)
        }
    }

    package enum StartingServer: Sendable, Equatable {
        /// A local process: whether it has exited, and whether it answers yet.
        case process(exited: Bool, answers: Bool)
        /// A job: squeue's phase for it (nil: listed no more), how long a queued job is waited
        /// for (`SlurmBackend.queuePatienceSeconds`), and whether its server answers at the
        /// endpoint it wrote.
        case job(phase: SlurmClient.Job.Phase?, queuePatience: Double, answers: Bool)
    }

    package enum Step: Sendable, Equatable {
        case serving
        /// A job still queued after the wait's patience: the visit says so; the next one looks again.
        case queued
        /// Look again after this many seconds.
        case lookAgain(after: Double)
        case exited
        case jobLost
        /// End the server (a queued job keeps its place instead) and say it did not answer in time.
        case timedOut
    }

    /// How long a start keeps asking a live server of the person's, started by hydra, before
    /// it ends it as not answering: one late answer (a busy machine, a kernel starting, a
    /// full listen queue for a moment) must not cost the person their kernels.
    package static let answerPatienceSeconds = 15.0

    /// How often a start looks at a local server, and at a job (running, or still queued).
    package static let lookInterval = (process: 0.025, runningJob: 0.05, queuedJob: 0.25)

    package static func nextStep(_ look: Look) -> Step {
        let late = look.elapsed >= look.timeout
        switch look.server {
        case .process(let exited, let answers):
            if exited { return .exited }
            if answers { return .serving }
            return late ? .timedOut : .lookAgain(after: lookInterval.process)
        case .job(let phase, let queuePatience, let answers):
            switch phase {
            case nil, .ending?: return .jobLost
            case .waiting?: return late || look.elapsed >= queuePatience ? .queued : .lookAgain(after: lookInterval.queuedJob)
            case .running?:
                if answers { return .serving }
                return late ? .timedOut : .lookAgain(after: lookInterval.runningJob)
            }
        }
    }
}
