#if canImport(Glibc)
import Glibc
#endif

/// One request and its whole answer over a connected stream socket, with a deadline: how
/// ipynb-launch asks a notebook server whether it is up, over a Unix socket (OwnedSocket) or
/// over TCP to a compute node.
package enum StreamExchange {
    /// Sends `request` and returns what comes back until the peer closes the connection (at most
    /// `limit` bytes), or nil when sending fails.
    package static func exchange(over connection: Descriptor, request: [UInt8], timeoutSeconds: Double,
                                 limit: Int = 1 << 20) -> [UInt8]? {
        let fd = connection.rawValue
        block(fd, timeoutSeconds: timeoutSeconds)
        guard retryingInterrupted({ request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }) == request.count else {
            return nil
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while response.count < limit {
            let count = retryingInterrupted { recv(fd, &buffer, buffer.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return response
    }

    /// Makes a socket blocking, with `timeoutSeconds` for each send and receive.
    static func block(_ fd: Int32, timeoutSeconds: Double) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A TCP connection to a numeric address (IPv4 or IPv6) and port, or nil when none is made
    /// within `timeoutSeconds` (refused, unreachable, or no answer). Names are not resolved:
    /// the caller has the address from Slurm.
    package static func connectTCP(address: String, port: Int, timeoutSeconds: Double) -> Descriptor? {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, String(port), &hints, &found) == 0, let info = found else { return nil }
        defer { freeaddrinfo(found) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        let connection = Descriptor(fd)
        if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { return nil }
            var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard retryingInterrupted({ poll(&waiting, 1, Int32(timeoutSeconds * 1000)) }) == 1 else { return nil }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0, failure == 0 else { return nil }
        }
        return connection
    }
}
