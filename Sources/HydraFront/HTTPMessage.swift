/// A request as the web server hands it over (CGI/FastCGI parameters and body).
package struct FrontRequest: Sendable {
    package let parameters: [String: String]
    package let body: [UInt8]

    package init(parameters: [String: String], body: [UInt8] = []) {
        self.parameters = parameters
        self.body = body
    }

    package var method: String { parameters["REQUEST_METHOD"] ?? "GET" }
    /// The path Apache received, without the query string.
    package var path: String {
        let uri = parameters["REQUEST_URI"] ?? ((parameters["SCRIPT_NAME"] ?? "") + (parameters["PATH_INFO"] ?? "/"))
        return String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
    }
    package var query: String { parameters["QUERY_STRING"] ?? "" }
    /// REMOTE_USER as the authentication module set it; nil or empty when none ran.
    package var remoteUser: String? {
        guard let user = parameters["REMOTE_USER"], !user.isEmpty else { return nil }
        return user
    }
    package var isHTTPS: Bool { parameters["HTTPS"]?.lowercased() == "on" }

    /// A cookie the browser sent, by name.
    package func cookie(_ name: String) -> String? {
        for pair in (parameters["HTTP_COOKIE"] ?? "").split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map({ $0.trimmingCharacters(in: .whitespaces) }) == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

    package func queryValue(_ key: String) -> String? {
        Self.formValue(key, in: query, plusIsSpace: false)
    }

    /// A field of a form POSTed as application/x-www-form-urlencoded.
    package func formValue(_ key: String) -> String? {
        guard (parameters["CONTENT_TYPE"] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded") else { return nil }
        return Self.formValue(key, in: String(decoding: body, as: UTF8.self), plusIsSpace: true)
    }

    private static func formValue(_ key: String, in query: String, plusIsSpace: Bool) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == key {
                let value = parts.count > 1 ? String(parts[1]) : ""
                return (plusIsSpace ? value.replacingOccurrences(of: "+", with: " ") : value).removingPercentEncoding
            }
        }
        return nil
    }
}

/// A response: status, headers and body, written back as CGI output.
package struct FrontResponse: Sendable {
    package var status: Int
    package var headers: [(String, String)]
    package var body: [UInt8]
    /// Work that must not delay the answer: run once the response is sent.
    package var afterwards: (@Sendable () -> Void)?
    /// What the answer was, in a word, for the metrics: the page's template name, `lab` for a
    /// browser sent to its lab.
    package var outcome: String?

    package init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], afterwards: (@Sendable () -> Void)? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.afterwards = afterwards
    }

    /// A redirect to a path of this site.
    package static func redirect(_ location: String, status: Int = 302, extraHeaders: [(String, String)] = [], outcome: String? = nil) -> FrontResponse {
        var response = FrontResponse(status: status, headers: [("Location", location), ("Cache-Control", "no-store")] + extraHeaders)
        response.outcome = outcome
        return response
    }

    package static func html(_ status: Int, _ page: String, extraHeaders: [(String, String)] = []) -> FrontResponse {
        FrontResponse(status: status, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            // Not no-referrer: under it Chromium sends `Origin: null` with the auto-login form's
            // POST, and Jupyter's origin check refuses the login (found by the browser test).
            ("Referrer-Policy", "same-origin"),
        ] + extraHeaders, body: Array(page.utf8))
    }

    package static func json(_ status: Int, _ text: String) -> FrontResponse {
        FrontResponse(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                      body: Array(text.utf8))
    }

    /// The CGI form: a Status header, the headers, a blank line, the body.
    package var cgiBytes: [UInt8] {
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
        case 401: "Unauthorized"
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

import HydraSite
import HydraSystem
import FoundationEssentials
