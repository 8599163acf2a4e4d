import HydraSite
import FoundationEssentials
import HydraPages
import HydraSystem

/// The answers the gate gives itself, instead of passing the request on: each a complete
/// HTTP/1.1 response that closes the connection. Pages are hydra's own (escaped) templates.
package enum GateAnswer: Equatable, Sendable {
    case tooMany(Admission.Kind, limit: Int, target: String)
    case siteFull(target: String)
    /// The server is not running: a browser is sent through the front, which starts it.
    case toFront(target: String)
    case notRunning
    case badGateway
    case timeout(seconds: Int)
    case badRequest

    static let pages = Pages()

    package var status: (code: Int, reason: String) {
        switch self {
        case .tooMany: (429, "Too Many Requests")
        case .siteFull, .notRunning: (503, "Service Unavailable")
        case .toFront: (302, "Found")
        case .badGateway: (502, "Bad Gateway")
        case .timeout: (504, "Gateway Timeout")
        case .badRequest: (400, "Bad Request")
        }
    }

    package func bytes() -> [UInt8] {
        var headers: [(String, String)] = [("Cache-Control", "no-store"), ("Connection", "close")]
        var body = ""
        switch self {
        case .tooMany(let kind, let limit, let target):
            headers.append(("Retry-After", "5"))
            body = Self.pages.render("too-many-requests", title: "Too many requests at once", values: [
                "limit": "\(limit)", "what": kind == .request ? "requests" : "open connections (notebooks, terminals)", "retry": target])
        case .siteFull(let target):
            headers.append(("Retry-After", "30"))
            body = Self.pages.render("site-full", title: "The site is at its limit", values: ["retry": target])
        case .toFront(let target):
            let next = target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            headers.append(("Location", "/?next=\(next)"))
        case .notRunning:
            headers.append(("Retry-After", "5"))
            body = Self.pages.render("server-not-running", title: "Your notebook server is not running")
        case .badGateway:
            body = Self.pages.render("unavailable", title: "hydra is not available", values: ["incident": "gate"])
        case .timeout(let seconds):
            body = Self.pages.render("server-timeout", title: "Your notebook server did not answer", values: ["seconds": "\(seconds)"])
        case .badRequest:
            body = Self.pages.render("not-found", title: "Bad request")
        }
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        if !body.isEmpty {
            headers += [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", Pages.contentSecurityPolicy),
                        ("X-Frame-Options", "DENY")]
        }
        headers.append(("Content-Length", "\(body.utf8.count)"))
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }
}
