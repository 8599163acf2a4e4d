import HydraGate
import Testing

@Suite("The request head the gate decides on")
struct RequestHeadTests {
    func parse(_ text: String) -> RequestHead.Parse { RequestHead.parse(Array(text.utf8)) }

    @Test func aPlainRequestForAPerson() throws {
        guard case .complete(let head) = parse("GET /user/alice/api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\nbody") else {
            Issue.record("not parsed"); return
        }
        #expect(head.person.value == "alice")
        #expect(head.target == "/user/alice/api/status")
        #expect(!head.isWebSocket)
        #expect(!head.isPageVisit)
    }

    @Test func aWebsocketUpgrade() throws {
        guard case .complete(let head) = parse("GET /user/bob/api/events/subscribe HTTP/1.1\r\nupgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n") else {
            Issue.record("not parsed"); return
        }
        #expect(head.isWebSocket)
    }

    @Test func aBrowserNavigation() throws {
        guard case .complete(let head) = parse("GET /user/bob/lab HTTP/1.1\r\nAccept: text/html,application/xhtml+xml\r\n\r\n") else {
            Issue.record("not parsed"); return
        }
        #expect(head.isPageVisit)
        guard case .complete(let post) = parse("POST /user/bob/login HTTP/1.1\r\nAccept: text/html\r\n\r\n") else {
            Issue.record("not parsed"); return
        }
        #expect(!post.isPageVisit)
    }

    @Test func anUnfinishedHeadWaitsForMore() {
        #expect(parse("GET /user/alice/lab HTTP/1.1\r\nHost: x\r\n") == .incomplete)
    }

    @Test(arguments: [
        "GET /hydra/health HTTP/1.1\r\n\r\n",          // not a person's path
        "GET /user/Root/lab HTTP/1.1\r\n\r\n",         // not a valid name
        "GET /user/alice HTTP/1.1\r\n\r\n",            // no slash after the name
        "GET /user/../etc/passwd HTTP/1.1\r\n\r\n",    // traversal
        "GET /user/alice/ SPDY/3\r\n\r\n",             // not HTTP/1
        "GET  /user/alice/ HTTP/1.1\r\n\r\n",          // malformed request line
    ])
    func whatIsNotAPersonsRequestIsRefused(_ text: String) {
        guard case .invalid = parse(text) else { Issue.record("accepted: \(text)"); return }
    }

    @Test func anEndlessHeadIsRefused() {
        let text = "GET /user/alice/ HTTP/1.1\r\nX: " + String(repeating: "a", count: RequestHead.maxBytes)
        guard case .invalid = parse(text) else { Issue.record("accepted"); return }
    }
}
