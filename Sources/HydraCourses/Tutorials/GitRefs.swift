import HydraSystem
import FoundationEssentials

/// Reads a ref straight from a git directory's files (loose ref, else packed-refs), for the
/// sync's fast path: a visit where nothing changed runs no git process at all.
enum GitRefs {
    static func read(gitDir: String, ref: String) -> String? {
        if let loose = FileSystem.readText("\(gitDir)/\(ref)") {
            let id = loose.trimmingCharacters(in: .whitespacesAndNewlines)
            return isObjectID(id) ? id : nil
        }
        guard let packed = FileSystem.readText("\(gitDir)/packed-refs", maxBytes: 1 << 26) else { return nil }
        for line in packed.split(separator: "\n") where line.hasSuffix(" \(ref)") {
            let id = String(line.prefix(40))
            return isObjectID(id) ? id : nil
        }
        return nil
    }

    /// True when no ref exists under `prefix` (a folder of loose refs, or lines of packed-refs).
    static func isEmpty(gitDir: String, prefix: String) -> Bool {
        let loose = FileSystem.entryNames(in: "\(gitDir)/\(prefix)") ?? []
        guard loose.isEmpty else { return false }
        let packed = FileSystem.readText("\(gitDir)/packed-refs", maxBytes: 1 << 26) ?? ""
        return !packed.contains(" \(prefix)")
    }

    static func isObjectID(_ text: String) -> Bool {
        Secret.isLowercaseHex(text.utf8, count: 40)
    }
}
