#if canImport(Glibc)
import Glibc
#endif
import CHydraSystem

/// A Unix socket of a given owner in a directory, and nothing planted in its place. The entry
/// is opened without following a link (O_PATH | O_NOFOLLOW), must be a socket owned by the
/// owner, and is connected through that very inode (`/proc/self/fd/N`), so a link or another
/// file swapped in meanwhile is never reached; the listening process (SO_PEERCRED) must run as
/// the owner too.
package enum OwnedSocket {
    /// Why there is no connection. `absent` and `notListening` simply mean "nobody listens";
    /// the others mean someone put something else there.
    package enum Refusal: Error, Equatable, CustomStringConvertible {
        case absent
        case notListening
        /// The listener's backlog is full: it accepts nothing (a stuck or hostile server).
        case busy
        case notASocket
        case wrongOwner(uid: UInt32)
        case foreignListener(uid: UInt32)
        case failed(Errno)

        package var description: String {
            switch self {
            case .absent: "no socket"
            case .notListening: "nothing listens on the socket"
            case .busy: "the server accepts no connections (its backlog is full)"
            case .notASocket: "not a socket (a link or a file was put in its place)"
            case .wrongOwner(let uid): "the socket belongs to UID \(uid), not to the person"
            case .foreignListener(let uid): "the listening process runs as UID \(uid), not as the person"
            case .failed(let code): "connect: \(code)"
            }
        }

        /// Whether this is merely "nobody listens" rather than something planted.
        package var meansNoServer: Bool { self == .absent || self == .notListening }
    }

    /// A connected, non-blocking, close-on-exec descriptor to the listener of `ownerUID` on
    /// `name` in `directory`; it closes itself unless handed on with `release()`.
    package static func connect(in directory: DirectoryHandle, name: String, ownerUID: UInt32) -> Result<Descriptor, Refusal> {
        connectWithListener(in: directory, name: name, ownerUID: ownerUID).map(\.connection)
    }

    /// The process listening on the owner's socket (checked as `connect` checks it), or nil.
    /// Nothing is sent; the connection is closed at once.
    package static func listenerPID(in directory: DirectoryHandle, name: String, ownerUID: UInt32) -> Int32? {
        guard case .success(let found) = connectWithListener(in: directory, name: name, ownerUID: ownerUID) else { return nil }
        return found.listenerPID
    }

    private static func connectWithListener(in directory: DirectoryHandle, name: String,
                                            ownerUID: UInt32) -> Result<(connection: Descriptor, listenerPID: Int32), Refusal> {
        let node = openat(directory.fd, name, hydra_open_path_flag | O_NOFOLLOW | O_CLOEXEC)
        guard node >= 0 else { return .failure(errno == ENOENT ? .absent : .failed(.current)) }
        defer { close(node) }
        let info: FileStatus
        do { info = try FileStatus.of(descriptor: node, name: name) } catch { return .failure(.failed(error.code)) }
        guard info.kind == .socket else { return .failure(.notASocket) }
        guard info.owner == ownerUID else { return .failure(.wrongOwner(uid: info.owner)) }

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(.failed(.current)) }
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
            default: return .failure(.failed(Errno(code)))
            }
        }
        var peerUID: uid_t = 0
        var peerPID: pid_t = 0
        guard hydra_peer_credentials(fd, &peerUID, &peerPID) == 0 else {
            let code = Errno.current
            close(fd)
            return .failure(.failed(code))
        }
        guard peerUID == ownerUID else {
            close(fd)
            return .failure(.foreignListener(uid: peerUID))
        }
        return .success((Descriptor(fd), peerPID))
    }

    /// Sends `request` to the owner's listener and returns what it answers until it closes the
    /// connection (at most `limit` bytes; each send and receive waits at most `timeoutSeconds`).
    package static func exchange(in directory: DirectoryHandle, name: String, ownerUID: UInt32, request: [UInt8],
                                 timeoutSeconds: Double, limit: Int = 1 << 20) -> [UInt8]? {
        guard case .success(let connection) = connect(in: directory, name: name, ownerUID: ownerUID) else { return nil }
        return StreamExchange.exchange(over: connection, request: request, timeoutSeconds: timeoutSeconds, limit: limit)
    }
}

/// An open descriptor that closes itself when the last reference goes, unless it was handed on
/// (to an event loop that closes it then) with `release()`.
package final class Descriptor: @unchecked Sendable {
    private var descriptor: Int32

    package init(_ descriptor: Int32) { self.descriptor = descriptor }

    /// The descriptor, still owned by this value (-1 after `release()`).
    package var rawValue: Int32 { descriptor }

    /// Hands the descriptor on: from now on its new owner closes it.
    package func release() -> Int32 {
        defer { descriptor = -1 }
        return descriptor
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }
}
