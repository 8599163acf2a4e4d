import Foundation

/// A control group of cgroup v2 as the kernel shows it: which group a process is in, and the
/// text of the group's files (memory.events, pids.max, ...). The roots are parameters so that
/// tests can point them at a fake /proc and /sys/fs/cgroup.
package struct ControlGroup: Sendable, Equatable {
    /// The group's path in the hierarchy, e.g. "/user.slice/user-1001.slice/user@1001.service/app.slice/x.service".
    package let path: String
    package let cgroupRoot: String

    /// The group of `pid`: the "0::PATH" line of /proc/PID/cgroup (v2's one hierarchy). Nil when
    /// the process is gone or the machine mounts only cgroup v1.
    package init?(ofProcess pid: Int32, procRoot: String = "/proc", cgroupRoot: String = "/sys/fs/cgroup") {
        guard let text = Self.kernelText("\(procRoot)/\(pid)/cgroup") else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix("0::/") }
        // The kernel writes this path; a ".." would still leave the cgroup tree, so it is refused.
        guard let path = line?.dropFirst(3), !path.split(separator: "/").contains("..") else { return nil }
        self.path = String(path)
        self.cgroupRoot = cgroupRoot
    }

    package var directory: String { cgroupRoot + (path == "/" ? "" : path) }

    /// The text of one of the group's files; nil when it cannot be read (the group is gone, or
    /// its controller is not enabled there).
    package func file(_ name: String) -> String? { Self.kernelText("\(directory)/\(name)") }

    /// /proc and /sys files report no size, so they are read to the end rather than by their
    /// size (what DirectoryHandle.readEntry does for ordinary files).
    private static func kernelText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
}
