import HydraSite
import HydraAccounts
import HydraSystem
import FoundationEssentials

/// The notebook servers running on this machine, as the web server's account can see them
/// without privilege: the socket in each runtime directory, the process listening on it
/// (SO_PEERCRED) and the processes it started, in /proc.
package struct ServerCensus: Sendable {
    package struct Server: Sendable, Equatable {
        package let name: String
        /// When it started: the time ipynb-launch published its login token.
        package let since: Date?
        /// The listening process, when it accepted the check's connection.
        package let pid: Int32?
        /// Summed over the server and its descendants: its kernels (each in a session of its
        /// own, as jupyter_client starts them) and whatever they started.
        package let residentBytes: UInt64
        package let cpuSeconds: Double
        package let kernels: Int
        /// The profile it runs (a configured one's name), nil when none is published.
        package let profile: String?
    }

    package let config: HydraConfig
    package let accounts: any AccountDatabase

    package init(config: HydraConfig, accounts: any AccountDatabase = SystemAccounts()) {
        self.config = config
        self.accounts = accounts
    }

    /// The names whose runtime directory holds a server socket: what /hydra/health counts.
    /// Read from the file system alone: it never connects to a socket a person controls.
    package func socketOwners() -> [String] {
        let base = config.server.runtimeDir
        let names = FileSystem.entryNames(in: base) ?? []
        return names.filter { name in
            UserName.isWellFormed(name) && (try? FileStatus.ofEntry("\(base)/\(name)/\(ServerSocket.fileName)"))??.kind == .socket
        }.sorted()
    }

    /// Every server with a socket, with what its processes use now.
    package func servers() -> [Server] {
        let runtime = RuntimeDirectory(config: config)
        let processes = ProcessTable.snapshot(minimumUID: UInt32(clamping: config.accounts.uidMin))
        return socketOwners().map { name in
            let account = accounts.user(named: name)
            let directory = try? DirectoryHandle.open("\(runtime.base)/\(name)")
            let pid = account.flatMap { account in
                directory.flatMap { ServerSocket.listenerPID(in: $0, ownerUID: account.uid) }
            }
            let token = directory.flatMap { try? $0.entryStatus(RuntimeDirectory.Entry.loginToken) }
            let since = token.map { Date(timeIntervalSince1970: Double($0.modifiedNanoseconds) / 1e9) }
            let own = pid.map { ProcessTable.tree(of: $0, in: processes) } ?? []
            return Server(name: name, since: since, pid: pid,
                          residentBytes: own.reduce(0) { $0 + $1.residentBytes },
                          cpuSeconds: own.reduce(0) { $0 + $1.cpuSeconds },
                          kernels: own.filter { Self.isKernel($0.commandLine) }.count,
                          profile: profile(of: name))
        }
    }

    /// The profile ipynb-launch published for the person's server: the name of one of the
    /// site's profiles, or nil (the person can write their runtime folder: nothing else is taken).
    package func profile(of name: String) -> String? {
        guard UserName.isWellFormed(name),
              let text = FileSystem.readText("\(config.server.runtimeDir)/\(name)/\(RuntimeDirectory.Entry.profile)", maxBytes: 64) else { return nil }
        return config.profiles.contains { $0.name == text } ? text : nil
    }

    /// Running servers per configured profile (every profile present, 0 when none runs; a server
    /// that published no profile counts as the default one): those with a socket here, and
    /// `jobOwners`, the people whose server's Slurm job runs (hydra-gate's view of the cluster).
    package func serversByProfile(jobOwners: [String] = []) -> [(profile: String, count: Int)] {
        let fallback = HydraConfig.defaultProfile(of: config.profiles)?.name ?? Profile.implicitName
        let running = Set(socketOwners() + jobOwners).map { profile(of: $0) ?? fallback }
        return config.profiles.map { profile in (profile.name, running.filter { $0 == profile.name }.count) }
    }

    /// A Jupyter kernel as jupyter_client starts it: `python -m ipykernel_launcher -f ...`.
    static func isKernel(_ commandLine: [String]) -> Bool {
        commandLine.contains { $0 == "ipykernel_launcher" || $0.hasSuffix("/ipykernel_launcher.py") }
    }
}
