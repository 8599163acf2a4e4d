import HydraSystem
import Synchronization

/// The UIDs of the people whose requests the gate passes, so that a request does not ask the
/// user database each time: getpwnam_r goes through NSS, which may reach LDAP over the network,
/// and the gate asks on its event loop, where a slow answer would hold every connection of that
/// loop. An entry is trusted for `lifetimeSeconds`; the gate asks again at once when the
/// person's runtime folder is not owned by the UID it holds (an account made again). A name
/// without an account is never kept: it may have one a moment later (addldapuser).
package final class AccountCache: Sendable {
    private let entries = Mutex<[String: (uid: UInt32, fetched: Double)]>([:])
    private let lookUp: @Sendable (String) -> UInt32?
    let lifetimeSeconds: Double
    /// Beyond this many names the cache starts over (a bound on its memory, not a working limit).
    let capacity: Int

    package init(lifetimeSeconds: Double = 60, capacity: Int = 100_000,
                 lookUp: @escaping @Sendable (String) -> UInt32? = { UserDatabase.user(named: $0)?.uid }) {
        self.lifetimeSeconds = lifetimeSeconds
        self.capacity = capacity
        self.lookUp = lookUp
    }

    /// The UID of `name`, from the cache while its entry is younger than the lifetime.
    package func uid(of name: String, now: Double) -> UInt32? {
        if let entry = entries.withLock({ $0[name] }), now - entry.fetched < lifetimeSeconds { return entry.uid }
        return fetch(name, now: now)
    }

    /// The UID of `name` as the user database says now, unless it says the same as `stale`.
    package func recheck(_ name: String, stale: UInt32, now: Double) -> UInt32? {
        guard let uid = fetch(name, now: now), uid != stale else { return nil }
        return uid
    }

    private func fetch(_ name: String, now: Double) -> UInt32? {
        let uid = lookUp(name)
        entries.withLock { entries in
            guard let uid else { entries[name] = nil; return }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[name] = (uid, now)
        }
        return uid
    }
}
