/// The git command line, always with an argument vector, a minimal environment, no user or
/// system configuration (no aliases, hooks or credential helpers of anyone's), no prompts, and
/// a timeout. Used only on hydra's own git directories, never in the user's folder.
///
/// Its one configuration file is /etc/hydra/gitconfig (root's, from scripts/install-site):
/// `safe.directory = *`, because the repositories hydra reads (the upstream, the shared
/// mirror) belong to other accounts, and git 2.39 honours safe.directory only there. Fetching
/// from a repository runs none of that repository's configuration, and hydra never runs git
/// inside a repository it does not own.
public struct Git: Sendable {
    public let gitDir: String
    public let timeoutSeconds: Double
    /// Extra `-c` settings, e.g. safe.directory for a mirror owned by the web server.
    public let settings: [String]

    /// A lock every git process started here also holds (see `ProcessRunner.Options.sharedDescriptor`):
    /// a git that outlives a killed caller keeps the directory locked until it ends.
    public let lockDescriptor: Int32?

    public init(gitDir: String, timeoutSeconds: Double = 60, settings: [String] = [], lockDescriptor: Int32? = nil) {
        self.gitDir = gitDir
        self.timeoutSeconds = timeoutSeconds
        self.settings = settings
        self.lockDescriptor = lockDescriptor
    }

    public struct Failure: HydraError {
        public let command: String
        public let message: String
        public let timedOut: Bool
        public var exitStatus: ExitStatus { .temporaryFailure }
        public var description: String {
            timedOut ? "git \(command) timed out" : "git \(command) failed: \(message)"
        }
    }

    public static let configPath = "/etc/hydra/gitconfig"

    static func environment(home: String) -> [String: String] {
        ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "GIT_TERMINAL_PROMPT": "0",
         "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": configPath, "GIT_ASKPASS": "/bin/false",
         "SSH_ASKPASS": "/bin/false", "GIT_SSH_COMMAND": "ssh -oBatchMode=yes"]
    }

    /// Runs `git --git-dir=DIR ARGS...` and returns stdout; a non-zero exit is a `Failure`.
    @discardableResult
    public func run(_ arguments: [String], timeout: Double? = nil, outputLimit: Int = 64 << 20) throws -> ProcessResult {
        var options = ProcessRunner.Options()
        options.environment = Self.environment(home: "/nonexistent")
        options.timeoutSeconds = timeout ?? timeoutSeconds
        options.outputLimit = outputLimit
        options.sharedDescriptor = lockDescriptor
        let settingArguments = settings.flatMap { ["-c", $0] }
        let result = try ProcessRunner.run("/usr/bin/git", settingArguments + ["--git-dir=\(gitDir)"] + arguments, options: options)
        guard result.status == 0 else {
            let lines = result.errorText.split(separator: "\n")
            let important = lines.filter { $0.hasPrefix("fatal:") || $0.hasPrefix("error:") }
            let message = (important.isEmpty ? Array(lines.suffix(3)) : important).joined(separator: " ")
            throw Failure(command: arguments.first ?? "", message: message, timedOut: result.timedOut)
        }
        return result
    }

    /// The commit a ref names, or nil.
    public func resolve(_ ref: String) -> String? {
        guard let result = try? run(["rev-parse", "--verify", "--quiet", "\(ref)^{commit}"]) else { return nil }
        let id = result.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// The regular files of a commit's tree: path -> blob id (symlinks and submodules are left out).
    public func files(of commit: String) throws -> [String: String] {
        let output = try run(["ls-tree", "-r", "-z", "--full-tree", commit]).standardOutput
        var files: [String: String] = [:]
        for record in output.split(separator: 0) {
            // "<mode> SP <type> SP <id> TAB <path>"
            guard let tab = record.firstIndex(of: UInt8(ascii: "\t")) else { continue }
            let fields = record[record.startIndex..<tab].split(separator: UInt8(ascii: " "))
            guard fields.count == 3, fields[1].elementsEqual("blob".utf8),
                  fields[0].elementsEqual("100644".utf8) || fields[0].elementsEqual("100755".utf8) else { continue }
            let path = String(decoding: record[record.index(after: tab)...], as: UTF8.self)
            files[path] = String(decoding: fields[2], as: UTF8.self)
        }
        return files
    }

    /// Removes the lock files a killed git leaves behind. Only call it while holding the lock
    /// every git of this directory holds, so no live git owns them.
    public func removeStaleLockFiles() {
        for name in ["shallow.lock", "config.lock", "packed-refs.lock", "HEAD.lock", "index.lock", "FETCH_HEAD.lock"] {
            unlink("\(gitDir)/\(name)")
        }
        _ = try? ProcessRunner.run("/usr/bin/find", [gitDir + "/refs", "-name", "*.lock", "-type", "f", "-delete"])
    }

    /// A git directory that git accepts, made anew (empty) when it is missing or broken.
    public func ensureRepository() throws {
        if (try? run(["rev-parse", "--git-dir"])) == nil {
            _ = try? ProcessRunner.run("/bin/rm", ["-rf", "--one-file-system", "--", gitDir])
            try run(["init", "--quiet", "--bare"])
        }
    }

    public func blob(_ id: String) throws -> [UInt8] {
        try run(["cat-file", "blob", id], outputLimit: 1 << 30).standardOutput
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif
