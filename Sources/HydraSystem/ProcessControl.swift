#if canImport(Glibc)
import Glibc
#endif

/// Signals, waiting, identities and limits of processes: the calls the layers above make
/// about a process, typed.
package enum ProcessControl {
    package enum Signal: Sendable {
        case terminate, kill
        var rawValue: Int32 { self == .terminate ? SIGTERM : SIGKILL }
    }

    /// Sends `signal` to the process and to the process group it leads (hydra starts servers as
    /// group leaders, so their kernels and terminals go with them). Gone already is fine.
    package static func signalProcessAndGroup(_ pid: Int32, _ signal: Signal) {
        guard pid > 0 else { return }
        kill(-pid, signal.rawValue)
        kill(pid, signal.rawValue)
    }

    /// Sends `signal` to the process group `leader` leads.
    package static func signalGroup(_ leader: Int32, _ signal: Signal) {
        guard leader > 0 else { return }
        kill(-leader, signal.rawValue)
    }

    /// Whether a process with this PID exists (one of another user counts: kill says EPERM).
    package static func exists(_ pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// The process group of `pid`, or nil when it is gone.
    package static func groupID(of pid: Int32) -> Int32? {
        let group = getpgid(pid)
        return group < 0 ? nil : group
    }

    /// Collects `pid` if it is this process's child and has ended: its exit status then
    /// (128 + N for signal N, as a shell reports it), else nil.
    package static func reapIfEnded(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        guard retryingInterrupted({ waitpid(pid, &status, WNOHANG) }) == pid else { return nil }
        return exitStatus(fromWaitStatus: status)
    }

    /// A wait status as a shell reports it: the exit code, or 128 + the signal's number.
    package static func exitStatus(fromWaitStatus status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs `body` with the file-creation mask set to `mask`, then restores the previous one.
    package static func withFileCreationMask<T, Failure: Error>(_ mask: UInt32, _ body: () throws(Failure) -> T) throws(Failure) -> T {
        let previous = umask(mask)
        defer { umask(previous) }
        return try body()
    }

    package static var realUserID: UInt32 { getuid() }
    package static var effectiveUserID: UInt32 { geteuid() }

    /// The memory page size, for turning /proc page counts into bytes.
    package static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }
    /// The unit of /proc's CPU times.
    package static var clockTicksPerSecond: Int { Int(sysconf(Int32(_SC_CLK_TCK))) }

    package enum Limit: Sendable {
        /// RLIMIT_DATA: the data segment, i.e. what a process may allocate.
        case dataBytes
        /// RLIMIT_NPROC: processes and threads of the user.
        case processes
        var resource: Int32 {
            switch self {
            case .dataBytes: Int32(RLIMIT_DATA.rawValue)
            case .processes: Int32(__RLIMIT_NPROC.rawValue)
            }
        }
    }

    /// Raises the soft limit on open descriptors to the hard one (at most 2^20). A proxy holds
    /// two per connection: the usual soft limit of 1024 would end it near 500.
    package static func raiseDescriptorLimit() throws(SystemError) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw SystemError("getrlimit", "RLIMIT_NOFILE") }
        guard limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 1 << 20)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw SystemError("setrlimit", "RLIMIT_NOFILE") }
    }

    /// Sets both the soft and the hard limit, for this process and what it starts.
    package static func setLimit(_ limit: Limit, to value: UInt64) throws(SystemError) {
        var raw = rlimit(rlim_cur: rlim_t(value), rlim_max: rlim_t(value))
        guard setrlimit(limit.resource, &raw) == 0 else { throw SystemError("setrlimit", "\(limit) = \(value)") }
    }
}

/// Sleeps the calling thread (for polling loops in the helpers, which have no event loop).
package func pauseThread(seconds: Double) {
    usleep(useconds_t(max(0, seconds) * 1_000_000))
}
