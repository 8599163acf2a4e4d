import HydraGate
import Testing

@Suite("The gate's own answers")
struct GateAnswerTests {
    func text(_ answer: GateAnswer) -> String { String(decoding: answer.bytes(), as: UTF8.self) }

    @Test func aRefusalSaysWhenToTryAgainAndClosesTheConnection() {
        let page = text(.tooMany(.request, limit: 16, target: "/user/alice/api/status"))
        #expect(page.hasPrefix("HTTP/1.1 429 Too Many Requests\r\n"))
        #expect(page.contains("\r\nRetry-After: 5\r\n"))
        #expect(page.contains("\r\nConnection: close\r\n"))
        #expect(text(.siteFull(target: "/user/alice/lab")).contains("\r\nRetry-After: 30\r\n"))
    }

    @Test func theLengthIsTheBodysInBytes() throws {
        let page = text(.timeout(seconds: 120))
        let parts = page.components(separatedBy: "\r\n\r\n")
        let length = try #require(parts[0].split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") })
        #expect(Int(length.dropFirst("Content-Length: ".count)) == parts.dropFirst().joined(separator: "\r\n\r\n").utf8.count)
    }

    @Test func aStoppedServerSendsTheBrowserToTheFrontWithItsPlaceKept() {
        let page = text(.toFront(target: "/user/alice/lab/tree/notes.ipynb?x=1"))
        #expect(page.hasPrefix("HTTP/1.1 302 Found\r\n"))
        #expect(page.contains("\r\nLocation: /?next=%2Fuser%2Falice%2Flab%2Ftree%2Fnotes%2Eipynb%3Fx%3D1\r\n"))
    }

    @Test func whatTheTargetHoldsIsEscapedInThePage() {
        let page = text(.tooMany(.websocket, limit: 3, target: "/user/alice/\"><script>x</script>"))
        #expect(!page.contains("<script>x"))
    }
}
