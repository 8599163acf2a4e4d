import HydraSystem
import FoundationEssentials

/// A server's log files, as both backends keep them: the server caps its own log while it runs
/// (capped_log in Home/jupyter_config.py); these keep the one before and show its end in error
/// messages.
enum ServerLog {
    /// Keeps the log under `maxBytes`: before a start, a log past half of it becomes LOG.1.
    static func rotate(_ path: String, maxBytes: Int) {
        if let info = try? FileStatus.ofEntry(path), info.size > maxBytes / 2 {
            try? FileSystem.rename(path, to: path + ".1")
        }
    }

    /// The last `lines` lines of these files, one after the other.
    static func tail(of paths: [String], lines: Int = 15) -> String {
        let text = paths.compactMap { FileSystem.readText($0, maxBytes: 1 << 28) }.joined()
        return text.isEmpty ? "(no log)" : text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}
