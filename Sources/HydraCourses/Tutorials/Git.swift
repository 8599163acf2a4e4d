/// The git command line, always with an argument vector, a minimal environment, no user or
/// system configuration (no aliases, hooks or credential helpers of anyone's), no prompts, and
/// a timeout. Used only on hydra's own git directories, never in the user's folder.
///
/// Its one configuration file (`configFile`, given as git's global configuration) names the
/// single repository of another account that a command may read (the upstream, the shared
/// mirror) as `safe.directory`: git 2.39 refuses to read another account's repository
/// ("dubious ownership") and honours safe.directory only from that file, not from `-c`
/// (checked). hydra never runs git inside a repository it does not own.
package struct Git: Sendable {
    package let gitDir: String
    package let timeoutSeconds: Double
    /// The global configuration file for these commands (see `writeConfig`).
    package let configFile: String

    /// A lock every git process started here also holds (see `ProcessRunner.Options.sharedDescriptor`):
    /// a git that outlives a killed caller keeps the directory locked until it ends.
    package let lockDescriptor: Int32?

    package init(gitDir: String, timeoutSeconds: Double = 60, configFile: String = "/dev/null", lockDescriptor: Int32? = nil) {
        self.gitDir = gitDir
        self.timeoutSeconds = timeoutSeconds
        self.configFile = configFile
        self.lockDescriptor = lockDescriptor
    }

    package struct Failure: HydraError {
        package let command: String
        package let message: String
        package let timedOut: Bool
        package var exitStatus: ExitStatus { .temporaryFailure }
        package var description: String {
            timedOut ? "git \(command) timed out" : "git \(command) failed: \(message)"
        }
    }

    /// Writes `name` in `directory` (when it changed): a git configuration naming `source` as
    /// the one safe.directory, if it is a repository on this machine. Returns its path.
    package static func writeConfig(_ name: String, in directory: DirectoryHandle, staging: DirectoryHandle,
                                   readableSource source: String) throws -> String {
        let path = source.hasPrefix("file://") ? String(source.dropFirst("file://".count)) : source
        var text = "# Written by hydra: the one repository of another account this git may read.\n"
        if path.hasPrefix("/") {
            let quoted = path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            text += "[safe]\n\tdirectory = \"\(quoted)\"\n"
        }
        if try directory.readEntry(name, maxBytes: 1 << 16) != .file(Array(text.utf8)) {
            try directory.writeAtomically(name, Array(text.utf8), staging: staging, mode: 0o644)
        }
        return "\(directory.path)/\(name)"
    }

    static func environment(home: String, configFile: String) -> [String: String] {
        ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "GIT_TERMINAL_PROMPT": "0",
         "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": configFile, "GIT_ASKPASS": "/bin/false",
         "SSH_ASKPASS": "/bin/false", "GIT_SSH_COMMAND": "ssh -oBatchMode=yes"]
    }

    /// Runs `git --git-dir=DIR ARGS...` and returns stdout; a non-zero exit is a `Failure`.
    @discardableResult
    package func run(_ arguments: [String], timeout: Double? = nil, outputLimit: Int = 64 << 20) throws -> ProcessResult {
        var options = ProcessRunner.Options()
        options.environment = Self.environment(home: "/nonexistent", configFile: configFile)
        options.timeoutSeconds = timeout ?? timeoutSeconds
        options.outputLimit = outputLimit
        options.sharedDescriptor = lockDescriptor
        let result = try ProcessRunner.run("/usr/bin/git", ["--git-dir=\(gitDir)"] + arguments, options: options)
        guard result.status == 0 else {
            let lines = result.errorText.split(separator: "\n")
            let important = lines.filter { $0.hasPrefix("fatal:") || $0.hasPrefix("error:") }
            let message = (important.isEmpty ? Array(lines.suffix(3)) : important).joined(separator: " ")
            throw Failure(command: arguments.first ?? "", message: message, timedOut: result.timedOut)
        }
        return result
    }

    /// The commit a ref names, or nil.
    package func resolve(_ ref: String) -> String? {
        guard let result = try? run(["rev-parse", "--verify", "--quiet", "\(ref)^{commit}"]) else { return nil }
        let id = result.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// The regular files of a commit's tree: path -> blob id (symlinks and submodules are left out).
    package func files(of commit: String) throws -> [String: String] {
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
    package func removeStaleLockFiles() {
        for name in ["shallow.lock", "config.lock", "packed-refs.lock", "HEAD.lock", "index.lock", "FETCH_HEAD.lock"] {
            try? FileSystem.remove("\(gitDir)/\(name)")
        }
        _ = try? ProcessRunner.run("/usr/bin/find", [gitDir + "/refs", "-name", "*.lock", "-type", "f", "-delete"])
    }

    /// A git directory that git accepts, made anew (empty) when it is missing or broken.
    package func ensureRepository() throws {
        if (try? run(["rev-parse", "--git-dir"])) == nil {
            _ = try? ProcessRunner.run("/bin/rm", ["-rf", "--one-file-system", "--", gitDir])
            try run(["init", "--quiet", "--bare"])
        }
    }

    package func blob(_ id: String) throws -> [UInt8] {
        try run(["cat-file", "blob", id], outputLimit: 1 << 30).standardOutput
    }
}

import HydraSystem
import FoundationEssentials
