@testable import HydraSite
import Logging
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("Front: responses and pages")
struct FrontTests {
    let front = Front(config: try! HydraConfig.parse("[site]\npublic_url = \"https://x.org\"\n", path: "x"), logger: Logger(label: "test"))

    @Test("a header value cannot split the response")
    func noSplitting() {
        let response = FrontResponse(status: 302, headers: [("Location", "/x\r\nSet-Cookie: evil=1")])
        let text = String(decoding: response.cgiBytes, as: UTF8.self)
        #expect(!text.contains("\r\nSet-Cookie"))
        #expect(text.hasPrefix("Status: 302 Found\r\n"))
    }

    @Test("cookies are found by exact name, not by a name that ends or starts the same")
    func cookies() {
        let request = FrontRequest(parameters: ["HTTP_COOKIE": "xhydra-server=evil; hydra-server=abc; hydra-server2=x"])
        #expect(request.cookie("hydra-server") == "abc")
        #expect(FrontRequest(parameters: ["HTTP_COOKIE": "hydra-serverx=1"]).cookie("hydra-server") == nil)
        #expect(FrontRequest(parameters: [:]).cookie("hydra-server") == nil)
    }

    @Test("the returning-browser cookie has path /, is HttpOnly, and is cleared with Max-Age=0")
    func serverCookie() {
        #expect(front.cookie(Front.serverCookieName, "12.34.56", https: true) == "hydra-server=12.34.56; Path=/; HttpOnly; SameSite=Lax; Secure")
        #expect(front.cookie(Front.serverCookieName, "", https: false, maxAge: 0).contains("Max-Age=0"))
    }

    @Test("Apache's shortcut cookie lasts as long as the front would not sync anyway, and not at all without that interval")
    func recentCookie() {
        #expect(front.recentCookie(https: true).map(\.1) == ["hydra-recent=1; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"])
        let everyVisit = Front(config: try! HydraConfig.parse("[site]\npublic_url = \"https://x.org\"\n[sync]\nvisit_sync_interval_seconds = 0\n", path: "x"),
                               logger: Logger(label: "test"))
        #expect(everyVisit.recentCookie(https: true).isEmpty)
    }

    @Test("a missing REMOTE_USER is a 500 page saying authentication is not configured")
    func noRemoteUser() {
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": "/hydra/whoami"]))
        #expect(response.status == 500)
        #expect(String(decoding: response.body, as: UTF8.self).contains("Sign-in is not configured"))
    }

    @Test("what the user sent is escaped in the page")
    func escapes() {
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": "/hydra/whoami", "REMOTE_USER": "<b>\"x\"</b>"]))
        let body = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 400)
        #expect(!body.contains("<b>") && body.contains("&lt;b&gt;"))
    }

    @Test("pages carry no-store and a strict CSP")
    func headers() {
        let response = front.handle(FrontRequest(parameters: ["REQUEST_URI": "/hydra/whoami", "REMOTE_USER": "ada"]))
        let names = Dictionary(response.headers, uniquingKeysWith: { a, _ in a })
        #expect(response.status == 200)
        #expect(names["Cache-Control"] == "no-store")
        #expect(names["Content-Security-Policy"]?.contains("default-src 'none'") == true)
    }

    @Test("the path ignores the query string")
    func path() {
        #expect(FrontRequest(parameters: ["REQUEST_URI": "/hydra/health?x=1"]).path == "/hydra/health")
        #expect(FrontRequest(parameters: ["QUERY_STRING": "a=1&next=%2Fx"]).queryValue("next") == "/x")
    }

    @Test("next stays inside the user's own server", arguments: [
        ("/user/ada/tree", "/user/ada/tree"), ("https://evil.example/", "/user/ada/lab"), ("//evil.example/x", "/user/ada/lab"),
        ("/user/bob/lab", "/user/ada/lab"), ("/user/ada/../bob/lab", "/user/ada/lab"), ("/user/ada/\\evil", "/user/ada/lab"),
        ("/user/ada/x y", "/user/ada/lab"),
    ])
    func next(_ pair: (String, String)) throws {
        #expect(front.safeNext(pair.0, for: try UserName("ada")) == pair.1)
    }

    @Test("the auto-login page carries the token only in its form, escaped, with a nonce'd script")
    func autoLogin() throws {
        let response = front.autoLogin(try UserName("ada"), token: "t<o>\"k", serverTag: "1.2.3", next: "/user/ada/lab", https: true)
        let body = String(decoding: response.body, as: UTF8.self)
        let headers = Dictionary(response.headers, uniquingKeysWith: { a, _ in a })
        #expect(body.contains("value=\"t&lt;o&gt;&quot;k\""))
        #expect(body.contains("action=\"/user/ada/login?next=%2Fuser%2Fada%2Flab\""))
        let nonce = try #require(headers["Content-Security-Policy"]?.split(separator: "'").first { $0.hasPrefix("nonce-") })
        #expect(body.contains("<script nonce=\"\(nonce.dropFirst(6))\">"))
        let cookies = response.headers.filter { $0.0 == "Set-Cookie" }.map(\.1)
        let xsrf = try #require(cookies.first { $0.hasPrefix("_xsrf=") })
        #expect(xsrf.contains("Path=/user/ada/") && xsrf.contains("Secure") && xsrf.contains("SameSite=Strict"))
        #expect(cookies.contains { $0.hasPrefix("hydra-server=1.2.3;") })
        #expect(headers["Cache-Control"] == "no-store")
    }
}
