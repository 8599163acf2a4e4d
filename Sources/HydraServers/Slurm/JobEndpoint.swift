import HydraSite
import HydraAccounts
import HydraSystem

/// Where hydra-gate connects for a person whose server is a Slurm job: the job, its node's
/// address (from Slurm), the port, and the pin of the certificate the server must show (made
/// by ipynb-launch for this start; the gate speaks TLS to nothing else). The front writes it
/// from ipynb-launch's answer into its own folder (`<runtime_dir>/.front/endpoints/NAME`,
/// root's, group of the web server), never the person: they control their runtime directory
/// and their home, so a file there could point the gate anywhere.
package struct JobEndpoint: Sendable, Equatable {
    package var job: String
    package var address: String
    package var port: Int
    package var pin: String

    package init(job: String, address: String, port: Int, pin: String) {
        self.job = job
        self.address = address
        self.port = port
        self.pin = pin
    }

    static let folderName = "endpoints"

    static func folder(_ config: HydraConfig, create: Bool = false) throws(SystemError) -> DirectoryHandle {
        try DirectoryHandle.open("\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)")
            .subdirectory(folderName, createMode: create ? 0o770 : nil)
    }

    package func write(for name: UserName, config: HydraConfig) throws(SystemError) {
        let folder = try Self.folder(config, create: true)
        try folder.writeAtomically(name.value, Array("\(job) \(address) \(port) \(pin)\n".utf8), staging: folder, mode: 0o660)
    }

    package static func remove(for name: UserName, config: HydraConfig) {
        try? folder(config).removeEntry(name.value)
    }

    /// The person's endpoint and when it was written (seconds since 1970), or nil.
    package static func read(for name: UserName, config: HydraConfig) -> (endpoint: JobEndpoint, written: Double)? {
        guard let folder = try? folder(config), let info = try? folder.entryStatus(name.value),
              case .file(let bytes)? = try? folder.readEntry(name.value, maxBytes: 256) else { return nil }
        let fields = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 4, let port = Int(fields[2]), isPin(fields[3]) else { return nil }
        return (JobEndpoint(job: fields[0], address: fields[1], port: port, pin: fields[3]), Double(info.modifiedNanoseconds) / 1e9)
    }

    /// 64 lowercase hex digits: a SHA-256.
    package static func isPin(_ text: String) -> Bool {
        Secret.isLowercaseHex(text.utf8, count: 64)
    }
}
