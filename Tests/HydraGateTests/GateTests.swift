import HydraServers
import Foundation
import HydraGate
import HydraSystem
import Logging
import NIOPosix
import Testing

/// hydra-gate itself, in this process, between a raw client standing in for Apache and a small
/// server standing in for the person's Jupyter: no root, no Apache (those are the integration
/// tests'). The person is the account running the tests; the web server's group is its group.
@Suite("The gate between Apache and a person's server", .serialized)
final class GateTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-gate-\(UUID().uuidString)").path
    let person: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var servers: [Int32] = []

    init() throws {
        person = String(cString: getpwuid(getuid()).pointee.pw_name)
        try FileManager.default.createDirectory(atPath: "\(base)/\(person)", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(base)/.gate", withIntermediateDirectories: true)
        chmod("\(base)/\(person)", 0o2750)
    }

    deinit {
        servers.forEach { close($0) }
        try? group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: base)
    }

    func gate(_ settings: String = "") throws -> String {
        let config = try gateTestConfig(base: base, extra: "[gate]\n\(settings)")
        let path = "\(base)/.gate/gate.sock"
        _ = try Gate(config: config, logger: Logger(label: "test")).listen(on: path, group: group)
        return path
    }

    /// The person's server: answers every request with `bodyBytes` bytes and closes (as Jupyter
    /// does with `Connection: close`), or, `answering: false`, accepts and never answers.
    func personServer(bodyBytes: Int = 0, answering: Bool = true, at name: String = ServerSocket.fileName) {
        let listener = UnixSocket.listen("\(base)/\(person)/\(name)")
        servers.append(listener)
        Thread.detachNewThread {
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }
                guard answering else { continue }
                _ = UnixSocket.readHead(connection)
                UnixSocket.write(connection, Array("HTTP/1.1 200 OK\r\nContent-Length: \(bodyBytes)\r\nConnection: close\r\n\r\n".utf8)
                                 + [UInt8](repeating: 120, count: bodyBytes))
                close(connection)
            }
        }
    }

    /// What Apache would send, and the whole answer.
    func request(_ gate: String, _ path: String, accept: String = "*/*") -> String {
        let fd = UnixSocket.connect(gate)
        defer { close(fd) }
        UnixSocket.write(fd, Array("GET /user/\(person)/\(path) HTTP/1.1\r\nHost: localhost\r\nAccept: \(accept)\r\nConnection: close\r\n\r\n".utf8))
        return String(decoding: UnixSocket.readAll(fd), as: UTF8.self)
    }

    @Test func aLargeAnswerArrivesWholeEvenWhenTheServerClosesRightAfterIt() throws {
        let gate = try gate()
        personServer(bodyBytes: 1 << 20)
        for _ in 0..<20 {
            let answer = request(gate, "static/lab/main.js")
            #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
            #expect(answer.utf8.count - (answer.range(of: "\r\n\r\n")!.upperBound.utf16Offset(in: answer)) == 1 << 20)
        }
    }

    @Test func oneRequestMoreThanThePersonsShareGets429AtOnce() throws {
        let gate = try gate("requests_per_person = 2")
        personServer(answering: false)
        let held = (0..<2).map { _ in UnixSocket.connect(gate) }
        for fd in held {
            UnixSocket.write(fd, Array("GET /user/\(person)/api/status HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        }
        usleep(200_000)
        let started = Date()
        let answer = request(gate, "api/status")
        #expect(answer.hasPrefix("HTTP/1.1 429 "))
        #expect(answer.contains("\r\nRetry-After: 5\r\n"))
        #expect(Date().timeIntervalSince(started) < 1)
        held.forEach { close($0) }
    }

    @Test func withNoServerABrowserGoesToTheFrontAndAnAPICallHearsWhy() throws {
        let gate = try gate()
        #expect(request(gate, "lab", accept: "text/html").contains("\r\nLocation: /?next=%2Fuser%2F\(person)%2Flab\r\n"))
        #expect(request(gate, "api/status").hasPrefix("HTTP/1.1 503 "))
    }

    @Test func aLinkPlantedAtTheSocketIsNeverFollowed() throws {
        let gate = try gate()
        personServer(bodyBytes: 2, at: "elsewhere.sock")
        try FileManager.default.createSymbolicLink(atPath: "\(base)/\(person)/\(ServerSocket.fileName)", withDestinationPath: "\(base)/\(person)/elsewhere.sock")
        #expect(request(gate, "api/status").hasPrefix("HTTP/1.1 502 "))
    }

    @Test func somethingThatIsNotAPersonsRequestIsRefused() throws {
        let gate = try gate()
        let fd = UnixSocket.connect(gate)
        defer { close(fd) }
        UnixSocket.write(fd, Array("GET /hydra/health HTTP/1.1\r\n\r\n".utf8))
        #expect(String(decoding: UnixSocket.readAll(fd), as: UTF8.self).hasPrefix("HTTP/1.1 400 "))
    }
}

/// Blocking Unix-socket calls for the test's client and server.
enum UnixSocket {
    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes); $0[bytes.count] = 0 }
        return address
    }

    static func listen(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(path)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        Glibc.listen(fd, 64)
        return fd
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = address(path)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        return fd
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            offset += count
        }
    }

    static func readHead(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            bytes.append(byte)
            if bytes.suffix(4) == [13, 10, 13, 10] { break }
        }
        return bytes
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return bytes }
            bytes += buffer[0..<count]
        }
    }
}
