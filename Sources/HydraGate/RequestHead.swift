import HydraSite
import FoundationEssentials
import HydraPages
import HydraSystem

/// The head of a request Apache passes on for `/user/NAME/...`: just what the gate decides on.
/// The gate forwards the bytes as they came; it never rewrites a request.
package struct RequestHead: Equatable, Sendable {
    /// Apache's heads are far smaller; anything longer is refused.
    package static let maxBytes = 64 * 1024

    package let method: String
    /// The path and query, e.g. "/user/alice/lab?reset".
    package let target: String
    package let person: UserName
    /// An upgrade to a websocket (kernel channels, terminals, the events API): held open for long.
    package let isWebSocket: Bool
    /// A browser navigation (GET or HEAD asking for HTML), which can be sent to the front when
    /// the server is not running; an API call gets a status instead.
    package let isPageVisit: Bool

    package enum Parse: Equatable, Sendable {
        case incomplete
        case invalid(String)
        case complete(RequestHead)
    }

    private static let end: [UInt8] = [13, 10, 13, 10]

    /// Parses a head from the start of `bytes` (which may hold more: the body follows).
    package static func parse<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Parse where Bytes.Element == UInt8 {
        guard let endRange = bytes.firstRange(of: end) else {
            return bytes.count > maxBytes ? .invalid("the request head is longer than \(maxBytes) bytes") : .incomplete
        }
        let text = String(decoding: bytes[bytes.startIndex..<endRange.lowerBound], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).makeIterator()
        let requestLine = (lines.next() ?? "").split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return .invalid("not an HTTP/1 request line") }
        let method = String(requestLine[0])
        let target = String(requestLine[1])
        let parts = target.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, parts[1] == "user", let slash = parts[2].firstIndex(of: "/"),
              let person = try? UserName(String(parts[2][..<slash])) else {
            return .invalid("the target is not /user/NAME/...")
        }
        var upgrade = "", accept = ""
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            switch line[..<colon].lowercased() {
            case "upgrade": upgrade = value
            case "accept": accept = value
            default: break
            }
        }
        return .complete(RequestHead(
            method: method, target: target, person: person,
            isWebSocket: upgrade.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "websocket" },
            isPageVisit: (method == "GET" || method == "HEAD") && accept.contains("text/html")))
    }
}
