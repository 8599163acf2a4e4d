@testable import HydraServers
import Foundation
import Testing
@testable import HydraFront
@testable import HydraSystem

/// ServerSocket: the one way hydra connects to a person's server. Each test plants what a
/// person (or anybody) could put at `jupyter.sock` and checks what is connected to.
@Suite("ServerSocket: only the person's own listening socket is ever connected to")
struct ServerSocketTests {
    /// A fresh folder with a listening socket of ours (the test's user stands for the person).
    final class Folder {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-socket-\(UUID().uuidString)").path
        var listeners: [Int32] = []

        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
        deinit {
            listeners.forEach { close($0) }
            try? FileManager.default.removeItem(atPath: path)
        }

        var handle: DirectoryHandle { get throws { try DirectoryHandle.open(path) } }

        /// A Unix socket bound at `name`, listening unless told otherwise.
        func bind(_ name: String, listen: Bool = true) {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array("\(path)/\(name)".utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes); $0[bytes.count] = 0 }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            precondition(bound == 0)
            if listen { Glibc.listen(fd, 8) }
            listeners.append(fd)
        }
    }

    @Test("the person's own listening socket is connected to")
    func ownSocket() throws {
        let folder = try Folder()
        folder.bind(ServerSocket.fileName)
        let result = ServerSocket.connect(in: try folder.handle, ownerUID: getuid())
        guard case .success(let connection) = result else { Issue.record("\(result)"); return }
        #expect(connection.rawValue >= 0)
    }

    @Test("no socket, or a socket nobody listens on, means no server (not tampering)")
    func noServer() throws {
        let folder = try Folder()
        #expect(ServerSocket.connect(in: try folder.handle, ownerUID: getuid()).failure == .absent)
        folder.bind(ServerSocket.fileName, listen: false)
        let refusal = ServerSocket.connect(in: try folder.handle, ownerUID: getuid()).failure
        #expect(refusal == .notListening)
        #expect(refusal?.meansNoServer == true)
    }

    @Test("a link planted at the socket's name is never followed, even to a listening socket")
    func plantedLink() throws {
        let folder = try Folder()
        folder.bind("elsewhere.sock")
        try FileManager.default.createSymbolicLink(atPath: "\(folder.path)/\(ServerSocket.fileName)", withDestinationPath: "\(folder.path)/elsewhere.sock")
        let refusal = ServerSocket.connect(in: try folder.handle, ownerUID: getuid()).failure
        #expect(refusal == .notASocket)
        #expect(refusal?.meansNoServer == false)
    }

    @Test("a plain file planted at the socket's name is refused")
    func plantedFile() throws {
        let folder = try Folder()
        _ = FileManager.default.createFile(atPath: "\(folder.path)/\(ServerSocket.fileName)", contents: Data("x".utf8))
        #expect(ServerSocket.connect(in: try folder.handle, ownerUID: getuid()).failure == .notASocket)
    }

    @Test("a socket owned by another account is refused before connecting")
    func foreignOwner() throws {
        let folder = try Folder()
        folder.bind(ServerSocket.fileName)
        #expect(ServerSocket.connect(in: try folder.handle, ownerUID: getuid() + 1).failure == .wrongOwner(uid: getuid()))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
