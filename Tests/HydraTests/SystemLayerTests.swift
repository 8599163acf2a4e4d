import Foundation
import Testing
@testable import HydraSystem

/// The system layer's typed wrappers: what the layers above rely on instead of raw calls.
@Suite("System layer: errno, file status, processes, files")
struct SystemLayerTests {
    /// A fresh folder, removed afterwards.
    final class Scratch {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-system-\(UUID().uuidString)").path
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test("a failed call's errno comes back typed, with the C library's text")
    func errnoOfAFailedCall() throws {
        let missing = "/nonexistent-\(UUID().uuidString)"
        #expect(throws: SystemError("renaming", "\(missing) to /tmp/y", errno: .noSuchFile)) {
            try FileSystem.rename(missing, to: "/tmp/y")
        }
        try FileSystem.remove(missing)  // gone already is what removing wants
        #expect(Errno.noSuchFile.description == "No such file or directory")
        #expect(SystemError("opening", "/x", errno: .notPermitted).description == "opening /x: Operation not permitted")
    }

    @Test("threat: a link planted where hydra reads or writes a file by path is not followed")
    func pathCallsDoNotFollowALink() throws {
        let scratch = try Scratch()
        let secret = "\(scratch.path)/secret"
        try "root's".write(toFile: secret, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(scratch.path)/planted", withDestinationPath: secret)
        #expect(FileSystem.readText("\(scratch.path)/planted") == nil)
        #expect(FileSystem.linkTarget("\(scratch.path)/planted") == secret)
        // Replacing the link's name replaces the link, never the file it points to.
        try FileSystem.writeAtomically("\(scratch.path)/planted", Array("mine".utf8), mode: 0o600)
        #expect(FileSystem.readText("\(scratch.path)/planted") == "mine")
        #expect(FileSystem.readText(secret) == "root's")
        #expect(try FileStatus.ofEntry("\(scratch.path)/planted")?.permissions == 0o600)
        #expect(FileSystem.entryNames(in: scratch.path)?.sorted() == ["planted", "secret"])
        #expect(FileSystem.readText(secret, maxBytes: 3) == nil && FileSystem.readText("\(scratch.path)/none") == nil)
        #expect(FileSystem.split("/a/b") == ("/a", "b") && FileSystem.split("/b") == ("/", "b"))
    }

    @Test("writes from many threads into one folder at once never mix their files (the front's threads)")
    func concurrentAtomicWrites() async throws {
        let scratch = try Scratch()
        let path = scratch.path
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<32 {
                group.addTask {
                    for round in 0..<20 { try? FileSystem.writeAtomically("\(path)/person\(index)", Array("\(index) \(round)".utf8), mode: 0o600) }
                }
            }
        }
        for index in 0..<32 { #expect(FileSystem.readText("\(path)/person\(index)") == "\(index) 19") }
        #expect(FileSystem.entryNames(in: path)?.count == 32)  // no staging file left behind
    }

    @Test("a call interrupted by a signal is made again; other results pass through at once")
    func interruptedCallsAreRetried() {
        var calls = 0
        let result: Int32 = retryingInterrupted {
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        #expect(result == 7 && calls == 3)
        calls = 0
        let failure: Int32 = retryingInterrupted {
            calls += 1
            errno = ENOENT
            return -1
        }
        #expect(failure == -1 && calls == 1)
    }

    @Test("file status names the kind: file, directory, link (not followed), socket; nothing there is nil")
    func fileStatusKinds() throws {
        let scratch = try Scratch()
        _ = FileManager.default.createFile(atPath: "\(scratch.path)/file", contents: Data("abc".utf8), attributes: [.posixPermissions: 0o640])
        try FileManager.default.createSymbolicLink(atPath: "\(scratch.path)/link", withDestinationPath: "file")
        let file = try #require(try FileStatus.ofEntry("\(scratch.path)/file"))
        #expect(file.kind == .regular && file.size == 3 && file.permissions == 0o640 && file.owner == getuid())
        #expect(try FileStatus.ofEntry("\(scratch.path)/link")?.kind == .symbolicLink)
        #expect(FileStatus.following("\(scratch.path)/link")?.inode == file.inode)
        #expect(try FileStatus.ofEntry(scratch.path)?.kind == .directory)
        #expect(try FileStatus.ofEntry("\(scratch.path)/absent") == nil)
        let directory = try DirectoryHandle.open(scratch.path)
        #expect(try directory.entryStatus("link")?.kind == .symbolicLink)
        #expect(try directory.status().kind == .directory)
    }

    @Test("a symbolic link is made once; whatever is already at the name stays as it is")
    func symbolicLinkIsNeverReplaced() throws {
        let scratch = try Scratch()
        let directory = try DirectoryHandle.open(scratch.path)
        #expect(try directory.makeSymbolicLink("data", to: "/srv/data") == true)
        #expect(try directory.makeSymbolicLink("data", to: "/elsewhere") == false)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "\(scratch.path)/data") == "/srv/data")
    }

    @Test("a wait status reads as a shell reports it: the exit code, or 128 + the signal")
    func waitStatuses() {
        #expect(ProcessControl.exitStatus(fromWaitStatus: 3 << 8) == 3)
        #expect(ProcessControl.exitStatus(fromWaitStatus: 0) == 0)
        #expect(ProcessControl.exitStatus(fromWaitStatus: 9) == 137)
        #expect(ProcessControl.exitStatus(fromWaitStatus: 15) == 143)
    }

    @Test("a process is seen alive, signalled with its group, and gone afterwards")
    func processLifecycle() throws {
        let pid = try ProcessRunner.spawnDetached("/bin/sleep", ["30"], environment: [:], workingDirectory: "/",
                                                  logPath: "/dev/null")
        #expect(ProcessControl.exists(pid) && ProcessTable.isAlive(pid))
        // The child may not have reached exec yet when spawning returns.
        let execDeadline = monotonicSeconds() + 5
        while ProcessTable.commandLine(of: pid) != ["/bin/sleep", "30"], monotonicSeconds() < execDeadline { pauseThread(seconds: 0.01) }
        #expect(ProcessTable.commandLine(of: pid) == ["/bin/sleep", "30"])
        #expect(ProcessTable.realUID(of: pid) == getuid())
        #expect(ProcessControl.groupID(of: pid) == pid)  // started as its own group's leader
        #expect(ProcessControl.reapIfEnded(pid) == nil)
        ProcessControl.signalProcessAndGroup(pid, .terminate)
        var status: Int32?
        let deadline = monotonicSeconds() + 5
        while status == nil, monotonicSeconds() < deadline {
            status = ProcessControl.reapIfEnded(pid)
            pauseThread(seconds: 0.01)
        }
        #expect(status == 128 + SIGTERM)
        #expect(!ProcessControl.exists(pid))
    }

    @Test("the file-creation mask holds inside the block only")
    func fileCreationMask() throws {
        let scratch = try Scratch()
        try ProcessControl.withFileCreationMask(0o077) { () throws(SystemError) in
            try FileSystem.touch("\(scratch.path)/private", mode: 0o666)
        }
        try FileSystem.touch("\(scratch.path)/open", mode: 0o644)
        #expect(try FileStatus.ofEntry("\(scratch.path)/private")?.permissions == 0o600)
        #expect(try FileStatus.ofEntry("\(scratch.path)/open")?.permissions == 0o644 & ~currentMask())
    }

    @Test("appending writes whole lines and never follows a link planted at the log's name")
    func appendNeverFollowsALink() throws {
        let scratch = try Scratch()
        try FileSystem.append("one\n", to: "\(scratch.path)/log")
        try FileSystem.append("two\n", to: "\(scratch.path)/log")
        #expect(try String(contentsOfFile: "\(scratch.path)/log", encoding: .utf8) == "one\ntwo\n")
        _ = FileManager.default.createFile(atPath: "\(scratch.path)/target", contents: Data())
        try FileManager.default.createSymbolicLink(atPath: "\(scratch.path)/planted", withDestinationPath: "target")
        #expect(throws: SystemError.self) { try FileSystem.append("x\n", to: "\(scratch.path)/planted") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(scratch.path)/target")).isEmpty)
        try FileSystem.rename("\(scratch.path)/log", to: "\(scratch.path)/log.1")
        #expect(FileSystem.exists("\(scratch.path)/log.1") && !FileSystem.exists("\(scratch.path)/log"))
        #expect((FileSystem.availableBytes(at: scratch.path) ?? 0) > 0)
    }

    @Test("a descriptor closes itself when its value goes, unless it was handed on")
    func descriptorsCloseThemselves() throws {
        // The write end of a pipe, wrapped: the read end sees end-of-file once it is closed.
        func pipeEnds() -> (read: Int32, write: Int32) {
            var ends: [Int32] = [-1, -1]
            precondition(pipe(&ends) == 0)
            _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
            return (ends[0], ends[1])
        }
        func readEnd(_ fd: Int32) -> Int {
            var byte: UInt8 = 0
            return read(fd, &byte, 1)
        }
        let first = pipeEnds()
        do {
            let descriptor = Descriptor(first.write)
            #expect(descriptor.rawValue == first.write)
            #expect(readEnd(first.read) == -1 && errno == EAGAIN)  // open: nothing to read yet
        }
        #expect(readEnd(first.read) == 0)  // closed with the value
        close(first.read)

        let second = pipeEnds()
        do {
            let descriptor = Descriptor(second.write)
            #expect(descriptor.release() == second.write)
            #expect(descriptor.rawValue == -1)
        }
        #expect(readEnd(second.read) == -1 && errno == EAGAIN)  // handed on: still open
        close(second.write)
        #expect(readEnd(second.read) == 0)
        close(second.read)
    }

    private func currentMask() -> UInt32 {
        let mask = umask(0o022)
        umask(mask)
        return UInt32(mask)
    }
}
