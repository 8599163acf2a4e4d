/// Finds the line on which a key of a TOML document was written, for error messages only
/// (the parser itself does not keep positions of values). It understands the subset hydra's
/// config uses: `[table]`, `[[array-of-tables]]` and `key = ...` lines.
struct SourceLocator {
    private var lines: [String: Int] = [:]  // "section.key" or "section[index].key" -> line
    private var sections: [String: Int] = [:]

    init(text: String) {
        var section = ""
        var arrayCounts: [String: Int] = [:]
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            let number = offset + 1
            if line.hasPrefix("[[") , let end = line.range(of: "]]") {
                let name = String(line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound]).trimmingCharacters(in: .whitespaces)
                let index = arrayCounts[name, default: 0]
                arrayCounts[name] = index + 1
                section = "\(name)[\(index)]"
                sections[section] = number
            } else if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                section = String(line[line.index(after: line.startIndex)..<end]).trimmingCharacters(in: .whitespaces)
                sections[section] = number
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces)
                    .trimmingQuotes
                let qualified = section.isEmpty ? key : "\(section).\(key)"
                if lines[qualified] == nil { lines[qualified] = number }
            }
        }
    }

    /// The line of `path` (e.g. "ldap.uri" or "courses[1].repo"), else of its section, else 1.
    func line(of path: String) -> Int {
        if let line = lines[path] { return line }
        var parent = path
        while let dot = parent.lastIndex(of: ".") {
            parent = String(parent[..<dot])
            if let line = sections[parent] ?? lines[parent] { return line }
        }
        return sections[path] ?? 1
    }
}

import HydraSystem
import FoundationEssentials

private extension String {
    /// Without the quotes around a quoted TOML key.
    var trimmingQuotes: String {
        let quotes: Set<Character> = ["\"", "'"]
        return String(drop(while: { quotes.contains($0) }).reversed().drop(while: { quotes.contains($0) }).reversed())
    }
}
