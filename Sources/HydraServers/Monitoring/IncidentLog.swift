import HydraSite
import HydraAccounts
import HydraSystem
import FoundationEssentials

/// The front's recent incidents (the 500 pages that name an id), for the admin page: one JSON
/// line each in `<runtime_dir>/.front/incidents.jsonl` (root's folder, the web server's group),
/// kept under `maximumBytes` by moving the file to `.1`. Apache's error log has the same lines;
/// the web server's account cannot read that log, so the front keeps its own short copy.
package struct IncidentLog: Sendable {
    package struct Incident: Codable, Sendable, Equatable {
        package let id: String
        package let user: String
        package let time: Double
        package let detail: String

        package init(id: String, user: String, time: Double, detail: String) {
            (self.id, self.user, self.time, self.detail) = (id, user, time, detail)
        }
    }

    package static let fileName = "incidents.jsonl"
    package static let maximumBytes = 256 * 1024
    package let path: String

    package init(config: HydraConfig) {
        path = "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)/\(Self.fileName)"
    }

    package init(path: String) {
        self.path = path
    }

    /// Adds one; never fails the caller (the incident is in Apache's log anyway).
    package func record(_ incident: Incident) {
        guard let line = try? JSONEncoder().encode(incident) else { return }
        if let size = FileStatus.following(path)?.size, size > Self.maximumBytes {
            try? FileSystem.rename(path, to: path + ".1")
        }
        try? FileSystem.append(String(decoding: line, as: UTF8.self) + "\n", to: path, mode: 0o660)
    }

    /// The latest `count`, newest first.
    package func recent(_ count: Int) -> [Incident] {
        let lines = [path + ".1", path].flatMap { file in
            (FileSystem.readText(file, maxBytes: 1 << 26) ?? "").split(separator: "\n")
        }
        return lines.suffix(count).reversed().compactMap { try? JSONDecoder().decode(Incident.self, from: Data($0.utf8)) }
    }
}
