import FoundationEssentials
import HydraSystem

/// The version at the top of debian/changelog, read the way a packager reads it: what every
/// program, page and metric must say they are.
package enum Changelog {
    package static func topVersion() throws -> String {
        let root = String(#filePath).components(separatedBy: "/Sources/HydraTesting/").first ?? "."
        guard let text = FileSystem.readText("\(root)/debian/changelog") else { throw SystemError("reading", "\(root)/debian/changelog") }
        guard let first = text.split(separator: "\n").first,
              let open = first.firstIndex(of: "("), let close = first.firstIndex(of: ")"), open < close else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return String(first[first.index(after: open)..<close])
    }
}
