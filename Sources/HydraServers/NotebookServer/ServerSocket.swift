import HydraAccounts
import HydraSystem

/// The one way hydra connects to a person's notebook server: `jupyter.sock` in the person's
/// runtime directory, owned by the person and listened on by the person's process, and
/// nothing planted in its place (OwnedSocket's checks). Used by the front, ipynb-launch and
/// hydra-gate alike.
package enum ServerSocket {
    package static let fileName = RuntimeDirectory.Entry.socket
    package typealias Refusal = OwnedSocket.Refusal

    /// A connected, non-blocking, close-on-exec descriptor to the server of `ownerUID`, whose
    /// socket is `name` (normally `fileName`) in `directory`.
    package static func connect(in directory: DirectoryHandle, name: String = fileName, ownerUID: UInt32) -> Result<Descriptor, Refusal> {
        OwnedSocket.connect(in: directory, name: name, ownerUID: ownerUID)
    }

    /// True when the person's own server accepts connections there (no request is sent).
    package static func isListening(in directory: DirectoryHandle, name: String = fileName, ownerUID: UInt32) -> Bool {
        // The connection closes itself: nothing is sent.
        guard case .success = connect(in: directory, name: name, ownerUID: ownerUID) else { return false }
        return true
    }

    /// The person's server process, as the socket's listener (nothing is sent).
    package static func listenerPID(in directory: DirectoryHandle, ownerUID: UInt32) -> Int32? {
        OwnedSocket.listenerPID(in: directory, name: fileName, ownerUID: ownerUID)
    }

    package struct Answer: Sendable {
        package let status: Int
        package let body: String
    }

    /// An HTTP/1.1 GET with the server's token: how ipynb-launch asks whether it is up.
    package static func get(in directory: DirectoryHandle, ownerUID: UInt32, path: String, host: String, token: String,
                           timeoutSeconds: Double) -> Answer? {
        OwnedSocket.exchange(in: directory, name: fileName, ownerUID: ownerUID, request: request(path: path, host: host, token: token),
                             timeoutSeconds: timeoutSeconds).flatMap(answer)
    }

    /// The same GET to a server on a compute node (the Slurm backend), at the node's address
    /// as Slurm gives it, over TLS to the certificate `pin` names and to no other.
    package static func get(address: String, port: Int, pin: String, path: String, host: String, token: String,
                           timeoutSeconds: Double) -> Answer? {
        guard let connection = StreamExchange.connectTCP(address: address, port: port, timeoutSeconds: timeoutSeconds) else { return nil }
        return PinnedTLS.exchange(over: connection, pin: pin, request: request(path: path, host: host, token: token),
                                  timeoutSeconds: timeoutSeconds).flatMap(answer)
    }

    static func request(path: String, host: String, token: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: token \(token)\r\nConnection: close\r\n\r\n".utf8)
    }

    static func answer(_ response: [UInt8]) -> Answer? {
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let status = Int(text.dropFirst(9).prefix(3)) else { return nil }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Answer(status: status, body: body)
    }
}
