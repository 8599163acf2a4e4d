import Foundation

/// Processes as /proc shows them: whose a PID is, what it runs, whether it lives.
package enum ProcessTable {
    package static func realUID(of pid: Int32) -> UInt32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
        }
        return nil
    }

    package static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    package static func isAlive(_ pid: Int32) -> Bool {
        guard ProcessControl.exists(pid) else { return false }
        // A zombie is dead for our purposes.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// Every live process of `uid` whose command line contains `marker`.
    package static func matching(uid: UInt32, marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            realUID(of: pid) == uid && isAlive(pid) && commandLine(of: pid).contains(where: { $0.contains(marker) })
        }
    }
}

/// One process as /proc shows it: whose it is, its parent, what it holds and has used.
package struct ProcessSample: Sendable, Equatable {
    package let pid: Int32
    package let parentPID: Int32
    package let uid: UInt32
    package let residentBytes: UInt64
    package let cpuSeconds: Double
    package let commandLine: [String]

    package init(pid: Int32, parentPID: Int32, uid: UInt32, residentBytes: UInt64, cpuSeconds: Double, commandLine: [String]) {
        (self.pid, self.parentPID, self.uid, self.residentBytes, self.cpuSeconds, self.commandLine) =
            (pid, parentPID, uid, residentBytes, cpuSeconds, commandLine)
    }
}

extension ProcessTable {
    /// Every process of an account with a UID of at least `minimumUID` (the system's own are
    /// left out: reading their command lines costs and tells nothing here).
    package static func snapshot(minimumUID: UInt32, procRoot: String = "/proc") -> [ProcessSample] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: procRoot)) ?? []
        let ticks = Double(ProcessControl.clockTicksPerSecond)
        let pageSize = UInt64(ProcessControl.pageSize)
        return entries.compactMap { entry -> ProcessSample? in
            guard let pid = Int32(entry), let owner = FileStatus.following("\(procRoot)/\(entry)")?.owner, owner >= minimumUID,
                  let text = try? String(contentsOfFile: "\(procRoot)/\(entry)/stat", encoding: .utf8),
                  let stat = StatLine(text) else { return nil }
            let command = FileManager.default.contents(atPath: "\(procRoot)/\(entry)/cmdline").map {
                $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            } ?? []
            return ProcessSample(pid: pid, parentPID: stat.parent, uid: owner, residentBytes: stat.residentPages * pageSize,
                                 cpuSeconds: Double(stat.userTicks + stat.systemTicks) / ticks, commandLine: command)
        }
    }

    /// The fields of /proc/PID/stat hydra reads (proc(5)); the command name in parentheses may
    /// itself hold spaces and parentheses, so the fields are counted from the last ')'.
    package struct StatLine: Equatable {
        package let parent: Int32
        package let userTicks: UInt64
        package let systemTicks: UInt64
        package let residentPages: UInt64

        package init?(_ text: String) {
            guard let close = text.lastIndex(of: ")") else { return nil }
            // From field 3 (state) on: ppid is field 4, utime 14, stime 15, rss 24.
            let fields = text[text.index(after: close)...].split(separator: " ")
            guard fields.count > 21, let parent = Int32(fields[1]), let user = UInt64(fields[11]),
                  let system = UInt64(fields[12]), let resident = Int64(fields[21]) else { return nil }
            (self.parent, userTicks, systemTicks, residentPages) = (parent, user, system, UInt64(max(0, resident)))
        }
    }

    /// `root` and every process below it in `processes` (a process that left the tree, e.g. a
    /// daemon, is no longer counted as root's).
    package static func tree(of root: Int32, in processes: [ProcessSample]) -> [ProcessSample] {
        let children = Dictionary(grouping: processes, by: \.parentPID)
        var found = processes.filter { $0.pid == root }
        var index = 0
        while index < found.count {
            found += children[found[index].pid] ?? []
            index += 1
        }
        return found
    }

    /// How many flock locks are held (not merely waited for) on files with these inode numbers,
    /// read from /proc/locks: what another process holds, seen without touching its locks.
    package static func flocksHeld(onInodes inodes: Set<UInt64>, locksFile: String = "/proc/locks") -> Int {
        guard let text = try? String(contentsOfFile: locksFile, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { line in
            // "1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF"; a waiter's line has "->" after the number.
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", let inode = fields[5].split(separator: ":").last.flatMap({ UInt64($0) })
            else { return false }
            return inodes.contains(inode)
        }.count
    }
}
