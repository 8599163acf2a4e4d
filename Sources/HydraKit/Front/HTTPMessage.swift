/// A request as the web server hands it over (CGI/FastCGI parameters and body).
public struct FrontRequest: Sendable {
    public let parameters: [String: String]
    public let body: [UInt8]

    public init(parameters: [String: String], body: [UInt8] = []) {
        self.parameters = parameters
        self.body = body
    }

    public var method: String { parameters["REQUEST_METHOD"] ?? "GET" }
    /// The path Apache received, without the query string.
    public var path: String {
        let uri = parameters["REQUEST_URI"] ?? ((parameters["SCRIPT_NAME"] ?? "") + (parameters["PATH_INFO"] ?? "/"))
        return String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
    }
    public var query: String { parameters["QUERY_STRING"] ?? "" }
    /// REMOTE_USER as the authentication module set it; nil or empty when none ran.
    public var remoteUser: String? {
        guard let user = parameters["REMOTE_USER"], !user.isEmpty else { return nil }
        return user
    }
    public var isHTTPS: Bool { parameters["HTTPS"]?.lowercased() == "on" }

    /// A cookie the browser sent, by name.
    public func cookie(_ name: String) -> String? {
        for pair in (parameters["HTTP_COOKIE"] ?? "").split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map({ $0.trimmingCharacters(in: .whitespaces) }) == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

    public func queryValue(_ key: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == key { return parts.count > 1 ? String(parts[1]).removingPercentEncoding : "" }
        }
        return nil
    }
}

/// A response: status, headers and body, written back as CGI output.
public struct FrontResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Work that must not delay the answer: run once the response is sent.
    public var afterwards: (@Sendable () -> Void)?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], afterwards: (@Sendable () -> Void)? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.afterwards = afterwards
    }

    /// A redirect to a path of this site.
    public static func redirect(_ location: String, extraHeaders: [(String, String)] = []) -> FrontResponse {
        FrontResponse(status: 302, headers: [("Location", location), ("Cache-Control", "no-store")] + extraHeaders)
    }

    public static func html(_ status: Int, _ page: String, extraHeaders: [(String, String)] = []) -> FrontResponse {
        FrontResponse(status: status, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            // Not no-referrer: under it Chromium sends `Origin: null` with the auto-login form's
            // POST, and Jupyter's origin check refuses the login (found by the browser test).
            ("Referrer-Policy", "same-origin"),
        ] + extraHeaders, body: Array(page.utf8))
    }

    public static func json(_ status: Int, _ text: String) -> FrontResponse {
        FrontResponse(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                      body: Array(text.utf8))
    }

    /// The CGI form: a Status header, the headers, a blank line, the body.
    public var cgiBytes: [UInt8] {
        var head = "Status: \(status) \(Self.reason(status))\r\n"
        for (name, value) in headers {
            // A header value never carries a line break (no response splitting).
            let clean = value.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
            head += "\(name): \(clean)\r\n"
        }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 302: "Found"
        case 303: "See Other"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 507: "Insufficient Storage"
        default: "Status"
        }
    }
}

import Foundation
