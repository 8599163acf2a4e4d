import CHydraSystem
#if canImport(Glibc)
import Glibc
#endif

/// What a finished child process left: its exit status and what it wrote.
package struct ProcessResult: Sendable {
    /// The exit code, or 128 + the signal number when a signal ended it.
    package let status: Int32
    package let standardOutput: [UInt8]
    package let standardError: [UInt8]
    package let timedOut: Bool
    /// The caller stopped waiting (`Options.abandonWhen`); the program goes on, unwatched.
    package var abandoned = false

    package var outputText: String { String(decoding: standardOutput, as: UTF8.self) }
    package var errorText: String { String(decoding: standardError, as: UTF8.self) }
}

/// Runs a program with an argument vector (never a shell), an explicit environment, no
/// inherited descriptors beyond 0-2, its output captured up to a limit, and a hard timeout.
/// swift-subprocess does this too, but only from async code; the FastCGI workers and the
/// helpers call it from plain threads, so this small posix_spawn wrapper is the one place.
package enum ProcessRunner {
    package struct Options: Sendable {
        package var environment: [String: String] = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]
        package var input: [UInt8]? = nil
        package var timeoutSeconds: Double = 30
        package var outputLimit: Int = 1 << 20
        package var workingDirectory: String? = nil
        /// A descriptor the child keeps as fd 3: a lock the child then holds as long as it runs,
        /// even if its parent is killed.
        package var sharedDescriptor: Int32? = nil
        /// Checked while waiting: once true, stop waiting and leave the program running (its
        /// output unread), e.g. when the caller itself is asked to exit.
        package var abandonWhen: (@Sendable () -> Bool)? = nil
        package init() {}
    }

    package static func run(_ executable: String, _ arguments: [String], options: Options = Options()) throws(SystemError) -> ProcessResult {
        var stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1], stdinPipe: [Int32] = [-1, -1]
        guard hydra_pipe_cloexec(&stdoutPipe) == 0, hydra_pipe_cloexec(&stderrPipe) == 0, hydra_pipe_cloexec(&stdinPipe) == 0 else {
            let code = errno
            for fd in stdoutPipe + stderrPipe + stdinPipe where fd >= 0 { close(fd) }
            throw SystemError("pipe for", executable, errno: Errno(code))
        }

        let spawned = Result { () throws(SystemError) -> pid_t in
            try spawn(executable, arguments, environment: options.environment, newSession: false) { actions in
                posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
                posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
                posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
                if let shared = options.sharedDescriptor {
                    posix_spawn_file_actions_adddup2(&actions, shared, 3)
                    hydra_spawn_add_closefrom(&actions, 4)
                } else {
                    hydra_spawn_add_closefrom(&actions, 3)
                }
                if let directory = options.workingDirectory { hydra_spawn_add_chdir(&actions, directory) }
            }
        }
        // The child's ends are the child's now (or nobody's, if it did not start).
        close(stdinPipe[0]); close(stdoutPipe[1]); close(stderrPipe[1])
        let pid: pid_t
        do {
            pid = try spawned.get()
        } catch {
            close(stdinPipe[1]); close(stdoutPipe[0]); close(stderrPipe[0])
            throw error
        }
        return collect(pid: pid, stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0], options: options)
    }

    /// Starts a long-running program detached from its caller: a session and process group of
    /// its own, stdin from /dev/null, stdout and stderr appended to `logPath` (created 0600),
    /// no other descriptor. Returns its PID; the caller may exit, the program goes on.
    package static func spawnDetached(_ executable: String, _ arguments: [String], environment: [String: String],
                                     workingDirectory: String, logPath: String) throws(SystemError) -> pid_t {
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw SystemError("opening the server log", logPath) }
        defer { close(log) }
        return try spawn(executable, arguments, environment: environment, newSession: true) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, log, 1)
            posix_spawn_file_actions_adddup2(&actions, log, 2)
            hydra_spawn_add_closefrom(&actions, 3)
            hydra_spawn_add_chdir(&actions, workingDirectory)
        }
    }

    /// posix_spawn with the descriptors `arrange` sets up, every signal at its default and
    /// unblocked, and optionally a session of its own.
    private static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], newSession: Bool,
                              arrange: (inout posix_spawn_file_actions_t) -> Void) throws(SystemError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        arrange(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t(), emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        sigfillset(&defaultSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= Int32(hydra_spawn_setsid_flag) }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted(by: { $0.key < $1.key }).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SystemError("spawning", executable, errno: Errno(result)) }
        return pid
    }


    private static func collect(pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32, options: Options) -> ProcessResult {
        var input = options.input ?? []
        var inputFD: Int32 = stdin
        if input.isEmpty { close(inputFD); inputFD = -1 } else { _ = fcntl(inputFD, F_SETFL, O_NONBLOCK) }
        var output: [UInt8] = [], errorOutput: [UInt8] = []
        var open: [Int32] = [stdout, stderr]
        let deadline = monotonicSeconds() + options.timeoutSeconds
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)

        while !open.isEmpty || inputFD >= 0 {
            let remaining = deadline - monotonicSeconds()
            if remaining <= 0 { timedOut = true; break }
            if options.abandonWhen?() == true {
                for fd in open { close(fd) }
                if inputFD >= 0 { close(inputFD) }
                var result = ProcessResult(status: -1, standardOutput: output, standardError: errorOutput, timedOut: false)
                result.abandoned = true
                return result
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000, options.abandonWhen == nil ? 1000 : 100)) + 1)
            if ready < 0 && errno == EINTR { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inputFD {
                    let written = input.withUnsafeBytes { write(inputFD, $0.baseAddress, $0.count) }
                    if written > 0 { input.removeFirst(written) }
                    if written < 0 && errno != EAGAIN || input.isEmpty { close(inputFD); inputFD = -1 }
                    continue
                }
                let count = read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    if entry.fd == stdout {
                        if output.count < options.outputLimit { output += buffer[0..<min(count, options.outputLimit - output.count)] }
                    } else if errorOutput.count < options.outputLimit {
                        errorOutput += buffer[0..<min(count, options.outputLimit - errorOutput.count)]
                    }
                } else if count == 0 || errno != EINTR && errno != EAGAIN {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        if timedOut { kill(pid, SIGKILL) }
        for fd in open { close(fd) }
        if inputFD >= 0 { close(inputFD) }

        var waitStatus: Int32 = 0
        _ = retryingInterrupted { waitpid(pid, &waitStatus, 0) }
        let status = ProcessControl.exitStatus(fromWaitStatus: waitStatus)
        return ProcessResult(status: status, standardOutput: output, standardError: errorOutput, timedOut: timedOut)
    }
}

/// Seconds on the monotonic clock, for deadlines and durations.
package func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
