import HydraSite
import FoundationEssentials
import HydraPages
import HydraSystem

/// The head of a request Apache passes on for `/user/NAME/...`: what the gate decides on, and
/// its fields. The gate forwards the bytes as they came, except on a kept connection to a Slurm
/// job's server (`KeptConnections`), where the hop's own fields (Connection, Keep-Alive) are the
/// gate's.
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
    /// HTTP/1.x's minor version, as the request line says.
    package let minorVersion: Int
    /// The fields, in order, as (name, value) with the value's surrounding blanks removed.
    package let fields: [Field]
    /// The head's length in bytes, with the blank line that ends it.
    package let byteCount: Int

    package struct Field: Equatable, Sendable {
        package let name: String
        package let value: String
    }

    /// A request that may go over a kept connection: GET or HEAD with no body and no upgrade,
    /// so that the answer's end is known from its own framing and sending it again is harmless.
    package var mayUseKeptConnection: Bool {
        guard method == "GET" || method == "HEAD", !isWebSocket else { return false }
        return !fields.contains { field in
            switch field.name.lowercased() {
            case "transfer-encoding", "upgrade": true
            case "content-length": field.value != "0"
            default: false
            }
        }
    }

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
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1."), let minorVersion = Int(requestLine[2].dropFirst(7)) else {
            return .invalid("not an HTTP/1 request line")
        }
        let method = String(requestLine[0])
        let target = String(requestLine[1])
        let parts = target.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, parts[1] == "user", let slash = parts[2].firstIndex(of: "/"),
              let person = try? UserName(String(parts[2][..<slash])) else {
            return .invalid("the target is not /user/NAME/...")
        }
        var upgrade = "", accept = ""
        var fields: [Field] = []
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let field = Field(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            fields.append(field)
            switch field.name.lowercased() {
            case "upgrade": upgrade = field.value.lowercased()
            case "accept": accept = field.value.lowercased()
            default: break
            }
        }
        return .complete(RequestHead(
            method: method, target: target, person: person,
            isWebSocket: upgrade.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "websocket" },
            isPageVisit: (method == "GET" || method == "HEAD") && accept.contains("text/html"),
            minorVersion: minorVersion, fields: fields, byteCount: bytes.distance(from: bytes.startIndex, to: endRange.upperBound)))
    }
}
