import HydraSite
import HydraAccounts
import HydraServers
import HydraSystem
import FoundationEssentials

/// Telling a person why a kernel of theirs died. Under systemd the server's unit counts what
/// its limits stopped (`LimitEvents`); JupyterLab itself says only "kernel died". The person's
/// next visit through the front gets a page that says it in words, once per new event: the
/// reading shown is remembered in `<runtime_dir>/.front/limits-NAME` (the front's own folder).
extension Front {
    /// The notice for `name`'s running server, or nil when nothing new happened (or the servers
    /// run detached: there a kernel names the limit itself, in its MemoryError).
    func limitNotice(_ name: UserName, serverPID: Int32) -> FrontResponse? {
        guard Supervision(config: config).mode == .systemd else { return nil }
        return limitNotice(name, reading: LimitEvents.read(serverPID: serverPID))
    }

    func limitNotice(_ name: UserName, reading: LimitEvents?) -> FrontResponse? {
        guard let reading else { return nil }
        let record = "\(gate.directory)/limits-\(name.value)"
        let shown = FileSystem.readText(record).flatMap { try? JSONDecoder().decode(LimitEvents.self, from: Data($0.utf8)) }
        guard let words = reading.explanation(since: shown) else { return nil }
        do {
            try FileSystem.writeAtomically(record, Array(JSONEncoder().encode(reading)), mode: 0o640)
        } catch {
            // Not remembered: the person would see the same notice on every visit.
            logger.warning("could not remember the limit notice shown (\(record)): \(error)", metadata: ["user": "\(name)"])
            return nil
        }
        logger.info("told why a limit stopped something: \(reading.summary)", metadata: ["user": "\(name)"])
        return page(200, "limit-hit", title: "Your notebook server hit a limit", values: ["words": words])
    }
}
