import HydraGate
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@Suite("The gate's kept connections to Slurm jobs' servers")
struct KeptConnectionsTests {
    let alice = KeptConnections.Key(person: "alice", address: "169.254.1.2", port: 21000, pin: String(repeating: "a", count: 64))

    func open(_ key: KeptConnections.Key, in pool: KeptConnections.Pool) throws -> KeptConnection {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return KeptConnection(channel: channel, key: key, pool: pool)
    }

    @Test("threat: a connection kept for one person's server is never taken for another person, another server or another start's certificate")
    func onlyItsOwnKeyTakesIt() throws {
        let pool = KeptConnections.Pool()
        let kept = try open(alice, in: pool)
        pool.keep(kept)
        for other in [KeptConnections.Key(person: "bob", address: alice.address, port: alice.port, pin: alice.pin),
                      KeptConnections.Key(person: "alice", address: "169.254.2.2", port: alice.port, pin: alice.pin),
                      KeptConnections.Key(person: "alice", address: alice.address, port: 21001, pin: alice.pin),
                      KeptConnections.Key(person: "alice", address: alice.address, port: alice.port, pin: String(repeating: "b", count: 64))] {
            #expect(pool.take(other) == nil)
        }
        #expect(pool.take(alice) === kept)
        #expect(pool.take(alice) == nil)   // one request at a time: taken is no longer idle
    }

    @Test("a closed connection is never handed out, and at most idlePerServer are kept per person and server")
    func closedOnesAreDroppedAndTheCountIsBounded() throws {
        let pool = KeptConnections.Pool()
        let closed = try open(alice, in: pool)
        pool.keep(closed)
        try closed.channel.close().wait()
        #expect(pool.take(alice) == nil)
        let connections = try (0...KeptConnections.idlePerServer).map { _ in try open(alice, in: pool) }
        connections.forEach(pool.keep)
        #expect(!connections.last!.channel.isActive)   // one more than the bound: closed, not kept
        var taken = 0
        while pool.take(alice) != nil { taken += 1 }
        #expect(taken == KeptConnections.idlePerServer)
    }

    func head(_ text: String) throws -> RequestHead {
        guard case .complete(let head) = RequestHead.parse(Array(text.utf8)) else { throw HeadNotParsed() }
        return head
    }
    struct HeadNotParsed: Error {}

    @Test(arguments: [
        ("GET /user/alice/lab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true),
        ("HEAD /user/alice/lab HTTP/1.1\r\nHost: x\r\n\r\n", true),
        ("GET /user/alice/api/status HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true),
        ("GET /user/alice/api/status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", false),   // a body
        ("GET /user/alice/api/status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false),
        ("GET /user/alice/api/events/subscribe HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false),
        ("POST /user/alice/api/sessions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", false),
        ("PUT /user/alice/api/contents/a.txt HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", false),
        ("DELETE /user/alice/api/sessions/1 HTTP/1.1\r\n\r\n", false),   // not to be sent twice
    ])
    func onlyABodylessGetOrHeadUsesAKeptConnection(_ text: String, _ kept: Bool) throws {
        #expect(try head(text).mayUseKeptConnection == kept)
    }

    @Test("the hop's own fields are the gate's: the server keeps the connection; the rest goes as Apache sent it")
    func theRequestLosesOnlyItsHopFields() throws {
        let request = try head("GET /user/alice/lab?reset HTTP/1.1\r\nHost: localhost\r\nConnection: close, X-Hop\r\nKeep-Alive: 5\r\n"
                               + "X-Hop: 1\r\nCookie: a=b\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n").forKeptConnection
        #expect(request.method == .GET && request.uri == "/user/alice/lab?reset" && request.version == .http1_1)
        #expect(request.headers.map { "\($0.name): \($0.value)" } == ["Host: localhost", "Cookie: a=b", "X-Forwarded-For: 10.0.0.1",
                                                                        "X-Forwarded-For: 10.0.0.2"])
        #expect(request.isKeepAlive)
    }
}
