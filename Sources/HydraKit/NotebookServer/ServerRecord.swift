import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What ipynb-launch remembers of the running server, in `<runtime dir>/server.json`, mode 0600
/// (the web server's group may list the directory, not read this file).
struct ServerRecord: Codable, Equatable {
    var pid: Int32
    var token: String
    var started: Double
}

/// The user's processes as /proc shows them: is a PID this user's notebook server?
enum UserProcesses {
    static func realUID(of pid: Int32) -> UInt32? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Uid:") {
            return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
        }
        return nil
    }

    static func commandLine(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        // A zombie is dead for our purposes.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// Every live process of `uid` whose command line contains `marker`.
    static func matching(uid: UInt32, marker: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            realUID(of: pid) == uid && isAlive(pid) && commandLine(of: pid).contains(where: { $0.contains(marker) })
        }
    }

    /// Resident memory of a process group, in bytes.
    static func groupRSS(_ pgid: Int32) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var total = 0
        for pid in entries.compactMap({ Int32($0) }) where getpgid(pid) == pgid {
            if let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8),
               let pages = Int(statm.split(separator: " ").dropFirst().first ?? "") {
                total += pages * pageSize
            }
        }
        return total
    }
}
