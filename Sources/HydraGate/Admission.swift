import HydraSite
import HydraServers
import HydraPages
import HydraSystem
import FoundationEssentials
import Synchronization

/// How many requests and websockets each person, and the whole site, have under way, against
/// `[gate]`'s limits. Each connection Apache opens to the gate is one request or one websocket
/// (Apache never reuses a connection to the gate: see apache/hydra.conf).
package final class Admission: Sendable {
    package enum Kind: String, Sendable {
        case request, websocket
    }

    package enum Refusal: Equatable, Sendable {
        /// This person has as many under way as `[gate]` allows one person (429).
        case personLimit(Int)
        /// The site has as many under way as `[gate]` allows in all (503).
        case siteLimit(Int)
    }

    package struct Usage: Equatable, Sendable {
        package var requests = 0
        package var websockets = 0

        package init(requests: Int = 0, websockets: Int = 0) {
            self.requests = requests
            self.websockets = websockets
        }

        subscript(kind: Kind) -> Int {
            get { kind == .request ? requests : websockets }
            set { if kind == .request { requests = newValue } else { websockets = newValue } }
        }
    }

    private struct State {
        var people: [String: Usage] = [:]
        var site = Usage()
        /// When each person's refusals were last logged, and how many were not logged since.
        var refusalLog: [String: (at: Double, unlogged: Int)] = [:]
        /// When each person's last request or websocket was admitted or ended (wall clock).
        var lastActivity: [String: Double] = [:]
    }

    private let settings: HydraConfig.Gate
    private let state = Mutex(State())

    package init(settings: HydraConfig.Gate) {
        self.settings = settings
    }

    private func limits(_ kind: Kind) -> (person: Int, site: Int) {
        kind == .request ? (settings.requestsPerPerson, settings.requestsTotal) : (settings.websocketsPerPerson, settings.websocketsTotal)
    }

    /// Counts one more for `person`, or says why not. Every admission must be released once.
    package func admit(_ person: UserName, _ kind: Kind) -> Refusal? {
        let (personLimit, siteLimit) = limits(kind)
        return state.withLock { state in
            if state.people[person.value, default: Usage()][kind] >= personLimit { return .personLimit(personLimit) }
            if state.site[kind] >= siteLimit { return .siteLimit(siteLimit) }
            state.people[person.value, default: Usage()][kind] += 1
            state.site[kind] += 1
            state.lastActivity[person.value] = Date().timeIntervalSince1970
            return nil
        }
    }

    package func release(_ person: UserName, _ kind: Kind) {
        state.withLock { state in
            state.site[kind] -= 1
            state.lastActivity[person.value] = Date().timeIntervalSince1970
            let left = state.people[person.value, default: Usage()][kind] - 1
            state.people[person.value]?[kind] = left
            if state.people[person.value] == Usage() { state.people[person.value] = nil }
        }
    }

    package func usage(of person: UserName) -> Usage { state.withLock { $0.people[person.value] ?? Usage() } }
    package var siteUsage: Usage { state.withLock { $0.site } }

    /// Everyone seen since the gate started: last activity and what is open now.
    package func activity() -> [String: PersonActivity] {
        state.withLock { state in
            state.lastActivity.reduce(into: [:]) { result, entry in
                let usage = state.people[entry.key] ?? Usage()
                result[entry.key] = PersonActivity(lastActivity: entry.value, openWebsockets: usage.websockets, requestsUnderWay: usage.requests)
            }
        }
    }

    /// Whether to log a refusal of this kind (e.g. "alice/admission") now: the first one, then
    /// at most one line every `interval` seconds with the number refused meanwhile (a flood must
    /// not flood the log). Returns the refusals this line stands for, or nil to stay quiet.
    package func refusalToLog(_ kind: String, now: Double, interval: Double = 10) -> Int? {
        state.withLock { state in
            let previous = state.refusalLog[kind]
            if let previous, now - previous.at < interval {
                state.refusalLog[kind] = (previous.at, previous.unlogged + 1)
                return nil
            }
            state.refusalLog[kind] = (now, 0)
            return 1 + (previous?.unlogged ?? 0)
        }
    }
}
