@testable import HydraSite
import Foundation
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("System: processes, secrets, trusted files")
struct SystemTests {
    @Test("arguments reach the program verbatim, never through a shell")
    func argv() throws {
        let result = try ProcessRunner.run("/usr/bin/printf", ["%s|", "a b", "$(id)", ";", "*"])
        #expect(result.status == 0)
        #expect(result.outputText == "a b|$(id)|;|*|")
    }

    @Test("the environment is exactly the one given")
    func environment() throws {
        var options = ProcessRunner.Options()
        options.environment = ["ONLY": "this"]
        let result = try ProcessRunner.run("/usr/bin/env", [], options: options)
        #expect(result.outputText == "ONLY=this\n")
    }

    @Test("no descriptor beyond stdin, stdout and stderr is inherited")
    func descriptors() throws {
        let leaked = open("/etc/hostname", O_RDONLY)  // deliberately without O_CLOEXEC
        defer { close(leaked) }
        let result = try ProcessRunner.run("/bin/ls", ["/proc/self/fd"])
        #expect(result.outputText.split(separator: "\n").sorted() == ["0", "1", "2", "3"])  // 3: ls's own directory handle
    }

    @Test("a hanging program is killed at the timeout")
    func timeout() throws {
        var options = ProcessRunner.Options()
        options.timeoutSeconds = 0.3
        let started = monotonicSeconds()
        let result = try ProcessRunner.run("/bin/sleep", ["10"], options: options)
        #expect(result.timedOut)
        #expect(result.status == 128 + 9)
        #expect(monotonicSeconds() - started < 2)
    }

    @Test("stdin is fed, stdout and stderr are kept apart, exit codes come back")
    func io() throws {
        var options = ProcessRunner.Options()
        options.input = Array("hello".utf8)
        let result = try ProcessRunner.run("/bin/sh", ["-c", "cat; echo oops >&2; exit 3"], options: options)
        #expect(result.outputText == "hello" && result.errorText == "oops\n" && result.status == 3)
    }

    @Test("a missing program is a typed error")
    func missing() {
        #expect(throws: SystemError.self) { try ProcessRunner.run("/nonexistent/program", []) }
    }

    @Test("secrets: 256 bits of hex, different every time")
    func secrets() {
        let a = Secret.hexToken(), b = Secret.hexToken()
        #expect(a.count == 64 && a.allSatisfy { $0.isHexDigit })
        #expect(a != b)
    }

    @Test("a file in a world-writable directory is not trusted")
    func untrustedDirectory() throws {
        let path = "/tmp/hydra-unit-\(getpid()).toml"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        defer { unlink(path) }
        #expect(throws: TrustedFile.Failure.self) { try TrustedFile.read(path) }
    }

    @Test("a relative or dotted path is not trusted")
    func dottedPath() {
        #expect(throws: TrustedFile.Failure.self) { try TrustedFile.read("etc/hostname") }
        #expect(throws: TrustedFile.Failure.self) { try TrustedFile.read("/etc/../etc/hostname") }
    }

    @Test("MemAvailable is read from /proc/meminfo's format; anything else is no figure")
    func memoryAvailable() {
        #expect(MemoryInfo.availableBytes(meminfo: "MemTotal:       24576000 kB\nMemAvailable:    2048 kB\n") == 2048 * 1024)
        #expect(MemoryInfo.availableBytes(meminfo: "MemTotal:       24576000 kB\n") == nil)
        #expect(MemoryInfo.availableBytes(meminfo: "MemAvailable:    lots\n") == nil)
        #expect(MemoryInfo.availableBytes() ?? 0 > 0)
    }
}
