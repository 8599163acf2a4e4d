@testable import HydraSite
@testable import HydraCourses
import Foundation
import Testing
@testable import HydraFront
@testable import HydraSystem

@Suite("Sync: names, paths and blob ids")
struct SyncTests {
    @Test("upstream copies sit beside the user's file with the same extension",
          arguments: [("lesson1.ipynb", "lesson1.upstream.ipynb"), ("Makefile", "Makefile.upstream"),
                      (".hidden", ".hidden.upstream"), ("a.tar.gz", "a.tar.upstream.gz"), ("Übung 1.ipynb", "Übung 1.upstream.ipynb")])
    func upstreamCopyName(_ pair: (String, String)) {
        #expect(TutorialSync.upstreamCopyName(pair.0) == pair.1)
    }

    @Test("paths from git that would leave the folder are refused",
          arguments: ["../x", "a/../../x", "/etc/passwd", ".git/config", "a/.git/hooks/x", "a//b", "./a"])
    func unsafePaths(_ path: String) {
        #expect(!TutorialSync.isSafe(path))
    }

    @Test("one branch-name rule for the configuration and the command line: no option, range or ref syntax",
          arguments: [("main", true), ("release/2026-fall", true), ("-x", false), ("a..b", false), ("a b", false), ("a~1", false),
                      ("a^", false), ("a:b", false), ("", false), ("feature*", false), ("ünï", false)])
    func branchNames(_ pair: (String, Bool)) {
        #expect(HydraConfig.isValidBranch(pair.0) == pair.1)
    }

    @Test("ordinary paths are accepted", arguments: ["a", "a/b.ipynb", "数据/表 1.csv", ".hidden", "a/.gitignore"])
    func safePaths(_ path: String) {
        #expect(TutorialSync.isSafe(path))
    }

    @Test("blob ids match git hash-object")
    func blobIDs() throws {
        for content in ["", "hello\n", String(repeating: "x", count: 100_000)] {
            var options = ProcessRunner.Options()
            options.input = Array(content.utf8)
            if content.isEmpty { options.input = nil }
            let git = try ProcessRunner.run("/usr/bin/git", ["hash-object", "--stdin"], options: options)
            #expect(GitBlobID.of(Array(content.utf8)) == git.outputText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test("refs are read from loose files and packed-refs")
    func refs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-refs-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/refs/heads", withIntermediateDirectories: true)
        let a = String(repeating: "a", count: 40), b = String(repeating: "b", count: 40)
        try "\(a)\n".write(toFile: "\(dir)/refs/heads/main", atomically: true, encoding: .utf8)
        try "# pack-refs with: peeled\n\(b) refs/heads/other\n".write(toFile: "\(dir)/packed-refs", atomically: true, encoding: .utf8)
        #expect(GitRefs.read(gitDir: dir, ref: "refs/heads/main") == a)
        #expect(GitRefs.read(gitDir: dir, ref: "refs/heads/other") == b)
        #expect(GitRefs.read(gitDir: dir, ref: "refs/heads/none") == nil)
        #expect(GitRefs.isEmpty(gitDir: dir, prefix: "refs/hydra/delivering/"))
        #expect(!GitRefs.isEmpty(gitDir: dir, prefix: "refs/heads/"))
    }
}
