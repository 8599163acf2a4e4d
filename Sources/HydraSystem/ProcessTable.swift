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

    /// Resident memory of a process group, in bytes.
    package static func groupRSS(_ pgid: Int32) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let pageSize = ProcessControl.pageSize
        var total = 0
        for pid in entries.compactMap({ Int32($0) }) where ProcessControl.groupID(of: pid) == pgid {
            if let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8),
               let pages = Int(statm.split(separator: " ").dropFirst().first ?? "") {
                total += pages * pageSize
            }
        }
        return total
    }
}
