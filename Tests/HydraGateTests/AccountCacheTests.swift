import Testing
import Synchronization
@testable import HydraGate

/// The gate's cache of people's UIDs: the user database (NSS, perhaps LDAP) is asked once per
/// person and lifetime, never for every request on the event loop.
@Suite("AccountCache: the user database asked once per person and lifetime")
struct AccountCacheTests {
    final class Directory: Sendable {
        let uids = Mutex<[String: UInt32]>(["alice": 20001])
        let asked = Mutex(0)
        func lookUp(_ name: String) -> UInt32? {
            asked.withLock { $0 += 1 }
            return uids.withLock { $0[name] }
        }
    }

    @Test("requests within the lifetime ask nobody; after it, the database is asked again")
    func lifetime() {
        let directory = Directory()
        let cache = AccountCache(lifetimeSeconds: 60, lookUp: directory.lookUp)
        for second in 0..<100 { #expect(cache.uid(of: "alice", now: Double(second) * 0.5) == 20001) }
        #expect(directory.asked.withLock { $0 } == 1)
        #expect(cache.uid(of: "alice", now: 61) == 20001)
        #expect(directory.asked.withLock { $0 } == 2)
    }

    @Test("an account made again with another UID is seen at once through recheck, and a name without an account is never kept")
    func remadeAndMissing() {
        let directory = Directory()
        let cache = AccountCache(lookUp: directory.lookUp)
        #expect(cache.uid(of: "alice", now: 0) == 20001)
        directory.uids.withLock { $0["alice"] = 20777 }
        #expect(cache.recheck("alice", stale: 20001, now: 1) == 20777)
        #expect(cache.uid(of: "alice", now: 2) == 20777)
        #expect(cache.recheck("alice", stale: 20777, now: 3) == nil)  // the same answer: no better UID
        #expect(cache.uid(of: "bob", now: 4) == nil)
        directory.uids.withLock { $0["bob"] = 20002 }  // addldapuser made bob's account
        #expect(cache.uid(of: "bob", now: 5) == 20002)
    }

    @Test("a flood of distinct names cannot grow the cache without bound")
    func bounded() {
        let directory = Directory()
        let small = AccountCache(capacity: 2, lookUp: directory.lookUp)
        directory.uids.withLock { $0 = ["a": 1, "b": 2, "c": 3] }
        _ = small.uid(of: "a", now: 0); _ = small.uid(of: "b", now: 0); _ = small.uid(of: "c", now: 0)
        _ = small.uid(of: "c", now: 1)
        _ = small.uid(of: "a", now: 1)  // dropped when the third name came: asked again
        #expect(directory.asked.withLock { $0 } == 4)
    }
}
