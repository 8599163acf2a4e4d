import Foundation

/// The machine's memory as the kernel reports it in /proc/meminfo.
package enum MemoryInfo {
    /// MemAvailable: what new processes can get without swapping (the kernel's estimate).
    package static func availableBytes(meminfo: String? = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) -> UInt64? {
        guard let meminfo else { return nil }
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3, fields[2] == "kB", let kibibytes = UInt64(fields[1]) else { return nil }
            return kibibytes * 1024
        }
        return nil
    }
}
