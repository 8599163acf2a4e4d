import CHydraSystem
#if canImport(Glibc)
import Glibc
#endif

/// The one way hydra connects to a person's notebook server: `jupyter.sock` in the person's
/// runtime directory, and nothing planted in its place. The entry is opened without following
/// a link (O_PATH | O_NOFOLLOW), must be a socket owned by the person, and is connected through
/// that very inode (`/proc/self/fd/N`), so a link or another file swapped in meanwhile is
/// never reached; the listening process (SO_PEERCRED) must be the person's too.
/// Used by the front, ipynb-launch and hydra-gate alike.
public enum ServerSocket {
    public static let fileName = RuntimeDirectory.Entry.socket

    /// Why there is no connection. `absent` and `notListening` simply mean "no server"; the
    /// others mean someone put something else there.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case absent
        case notListening
        /// The listener's backlog is full: it accepts nothing (a stuck or hostile server).
        case busy
        case notASocket
        case wrongOwner(uid: UInt32)
        case foreignListener(uid: UInt32)
        case failed(errno: Int32)

        public var description: String {
            switch self {
            case .absent: "no socket"
            case .notListening: "nothing listens on the socket"
            case .busy: "the server accepts no connections (its backlog is full)"
            case .notASocket: "not a socket (a link or a file was put in its place)"
            case .wrongOwner(let uid): "the socket belongs to UID \(uid), not to the person"
            case .foreignListener(let uid): "the listening process runs as UID \(uid), not as the person"
            case .failed(let code): "connect: \(String(cString: strerror(code)))"
            }
        }

        /// Whether this is merely "no server runs" rather than something planted.
        public var meansNoServer: Bool { self == .absent || self == .notListening }
    }

    /// A connected, non-blocking, close-on-exec descriptor to the server of `ownerUID`, whose
    /// socket is `name` (normally `fileName`) in `directory`.
    public static func connect(in directory: DirectoryHandle, name: String = fileName, ownerUID: UInt32) -> Result<Int32, Refusal> {
        let node = openat(directory.fd, name, hydra_open_path_flag | O_NOFOLLOW | O_CLOEXEC)
        guard node >= 0 else { return .failure(errno == ENOENT ? .absent : .failed(errno: errno)) }
        defer { close(node) }
        var info = stat()
        guard fstat(node, &info) == 0 else { return .failure(.failed(errno: errno)) }
        guard info.st_mode & S_IFMT == S_IFSOCK else { return .failure(.notASocket) }
        guard info.st_uid == ownerUID else { return .failure(.wrongOwner(uid: info.st_uid)) }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(.failed(errno: errno)) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array("/proc/self/fd/\(node)".utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        // Non-blocking: a listener that stopped accepting (a full backlog) answers EAGAIN at
        // once instead of holding the caller.
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 {
            let code = errno
            close(fd)
            switch code {
            case ECONNREFUSED, ENOENT: return .failure(.notListening)
            case EAGAIN: return .failure(.busy)
            default: return .failure(.failed(errno: code))
            }
        }
        var peerUID: uid_t = 0
        guard hydra_peer_uid(fd, &peerUID) == 0 else {
            let code = errno
            close(fd)
            return .failure(.failed(errno: code))
        }
        guard peerUID == ownerUID else {
            close(fd)
            return .failure(.foreignListener(uid: peerUID))
        }
        return .success(fd)
    }

    /// True when the person's own server accepts connections there (no request is sent).
    public static func isListening(in directory: DirectoryHandle, name: String = fileName, ownerUID: UInt32) -> Bool {
        guard case .success(let fd) = connect(in: directory, name: name, ownerUID: ownerUID) else { return false }
        close(fd)
        return true
    }

    public struct Answer: Sendable {
        public let status: Int
        public let body: String
    }

    /// An HTTP/1.1 GET with the server's token: how ipynb-launch asks whether it is up.
    public static func get(in directory: DirectoryHandle, ownerUID: UInt32, path: String, host: String, token: String,
                           timeoutSeconds: Double) -> Answer? {
        guard case .success(let fd) = connect(in: directory, ownerUID: ownerUID) else { return nil }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAuthorization: token \(token)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while response.count < 1 << 20 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let status = Int(text.dropFirst(9).prefix(3)) else { return nil }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Answer(status: status, body: body)
    }
}
