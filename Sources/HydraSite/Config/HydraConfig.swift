import HydraSystem
import FoundationEssentials
import TOMLKit

/// The whole of /etc/hydra/hydra.toml, typed. Every key is documented in etc/hydra.toml.
package struct HydraConfig: Sendable, Equatable {
    package static let defaultPath = "/etc/hydra/hydra.toml"

    package struct Site: Sendable, Equatable {
        /// The origin users type, e.g. "https://jupyter.example.org".
        package var publicURL: String
        /// A Kerberos realm stripped from REMOTE_USER ("alice@EXAMPLE.ORG" -> "alice"); empty: none.
        package var kerberosRealm: String
        package var webServerUser: String
        package var webServerGroup: String
    }

    package struct Accounts: Sendable, Equatable {
        /// Members of this group may be served; the web server may run ipynb-launch as them.
        package var group: String
        package var homeBase: String
        package var shell: String
        /// An extra, stricter pattern a name must also match (the built-in rule always applies).
        package var namePattern: String
        /// UIDs a hydra account may have; never below UID_MIN of /etc/login.defs, never 0.
        package var uidMin: Int
        package var uidMax: Int
        package var deny: [String]
        package var privilegedGroups: [String]
        /// Create an account with a local UID when LDAP definitely has no such entry.
        package var localUIDFallback: Bool
        package var localUIDMin: Int
        package var localUIDMax: Int
    }

    package struct LDAP: Sendable, Equatable {
        package var uri: String
        package var base: String
        package var bindDN: String
        package var bindPasswordFile: String
        package var startTLS: Bool
        package var timeoutSeconds: Int
        package var uidAttribute: String
        package var uidNumberAttribute: String
        package var displayNameAttribute: String
    }

    package struct Server: Sendable, Equatable {
        /// Where servers run: this machine, or Slurm jobs on compute nodes.
        package enum Backend: String, Sendable, Equatable, CaseIterable {
            case local, slurm
        }

        package var backend: Backend
        package var runtimeDir: String
        package var pythonEnv: String
        /// The command, first element looked up in `<python_env>/bin` unless absolute.
        package var command: [String]
        package var idleTimeoutSeconds: Int
        package var kernelIdleTimeoutSeconds: Int
        package var startTimeoutSeconds: Int
        package var maxConcurrentStarts: Int
        package var logMaxBytes: Int
        /// Each runtime directory is a file system of its own of this size (nil: a plain
        /// directory on the runtime_dir's file system).
        package var runtimeDirSizeBytes: UInt64?
        /// A new server starts only while the machine has at least this much memory available.
        package var startMinAvailableBytes: UInt64?
    }

    /// `[gate]`: hydra-gate, between Apache and every notebook server.
    package struct Gate: Sendable, Equatable {
        /// Requests (not websockets) one person may have under way at once; more get 429.
        package var requestsPerPerson: Int
        /// Open websockets (kernels, terminals, events) of one person; more get 429.
        package var websocketsPerPerson: Int
        /// Requests under way on the whole site; more get 503.
        package var requestsTotal: Int
        /// Open websockets on the whole site; more get 503.
        package var websocketsTotal: Int
        /// A request's answer must begin (and then keep moving) within this; else 504.
        package var responseTimeoutSeconds: Int
        /// A websocket with no traffic either way for this long is closed.
        package var websocketIdleTimeoutSeconds: Int
    }

    /// `[admin]`: who may see /hydra/admin (every server, stop buttons) and /hydra/metrics.
    package struct Admin: Sendable, Equatable {
        package var users: [String]
        /// Members of this group are admins too; empty: none.
        package var group: String
    }

    package struct Course: Sendable, Equatable {
        package var repo: String
        package var branch: String
        package var folder: String
    }

    package struct Sync: Sendable, Equatable {
        package var mirrorDir: String
        package var fetchIntervalSeconds: Int
        package var fetchTimeoutSeconds: Int
        /// A visit to a running server is answered at once; the sync runs after the answer, at
        /// most this often per user.
        package var visitSyncIntervalSeconds: Int
        package var restoreDeleted: Bool
        package var dataPath: String
        package var dataLinkName: String
    }

    package var site: Site
    package var accounts: Accounts
    package var ldap: LDAP
    package var server: Server
    package var sync: Sync
    package var limits: LimitSettings
    package var gate: Gate
    package var admin: Admin
    /// nil: no `[slurm]` table.
    package var slurm: SlurmSettings?

    /// The Slurm settings when this configuration's servers are Slurm jobs (`server.backend =
    /// "slurm"`, or a profile's applied), else nil: the one place that asks which backend runs them.
    package var slurmJobs: SlurmSettings? { server.backend == .slurm ? slurm : nil }
    /// The site's `[slurm]` when any profile's servers are jobs (hydra-gate's view of the
    /// cluster, the admin page's jobs), else nil.
    package var clusterSlurm: SlurmSettings? { profiles.contains { $0.backend == .slurm } ? slurm : nil }
    package var courses: [Course]
    /// Never empty: without `[[profiles]]`, the one implicit profile (`Profile.implicitName`).
    package var profiles: [Profile]
    /// `[[profiles]]` is in the file: people choose among them.
    package var hasProfiles: Bool

    /// Parses a document; `path` only names the file in messages.
    package static func parse(_ text: String, path: String) throws(ConfigError) -> HydraConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .syntax(path: path, line: error.source.begin.line, column: error.source.begin.column,
                          message: error.description)
        } catch {
            throw .syntax(path: path, line: 1, column: 1, message: "\(error)")
        }
        var root = TableReader(path: path, section: "", table: table, locator: SourceLocator(text: text))
        let config = try HydraConfig(root: &root)
        try root.finish()
        return config
    }

    private init(root: inout TableReader) throws(ConfigError) {
        let path = root.path
        func section(_ name: String, _ root: inout TableReader) throws(ConfigError) -> TableReader {
            try root.subtable(name) ?? TableReader(path: path, section: name, table: TOMLTable(), locator: root.locator)
        }

        var site = try section("site", &root)
        self.site = Site(
            publicURL: try site.string("public_url"),
            kerberosRealm: try site.string("kerberos_realm", default: ""),
            webServerUser: try site.string("web_server_user", default: "www-data"),
            webServerGroup: try site.string("web_server_group", default: "www-data"))
        guard let url = URL(string: self.site.publicURL), let scheme = url.scheme, ["http", "https"].contains(scheme),
              url.host != nil, url.query == nil, url.path.isEmpty || url.path == "/" else {
            throw site.invalid("public_url", "must be an origin like https://jupyter.example.org (no path, no query)")
        }
        try site.finish()

        var accounts = try section("accounts", &root)
        self.accounts = Accounts(
            group: try accounts.string("group", default: "hydra"),
            homeBase: try accounts.absolutePath("home_base", default: "/home"),
            shell: try accounts.absolutePath("shell", default: "/bin/bash"),
            namePattern: try accounts.string("name_pattern", default: ""),
            uidMin: try accounts.int("uid_min", default: 1000, in: 1...0xFFFF_FFFE),
            uidMax: try accounts.int("uid_max", default: 99_999, in: 1...0xFFFF_FFFE),
            deny: try accounts.strings("deny", default: ["root", "www-data", "nobody", "daemon", "admin", "administrator"]),
            privilegedGroups: try accounts.strings(
                "privileged_groups", default: ["root", "sudo", "adm", "wheel", "admin", "staff", "shadow", "disk", "docker", "lxd", "systemd-journal"]),
            localUIDFallback: try accounts.bool("local_uid_fallback", default: false),
            localUIDMin: try accounts.int("local_uid_min", default: 70_000, in: 1...0xFFFF_FFFE),
            localUIDMax: try accounts.int("local_uid_max", default: 79_999, in: 1...0xFFFF_FFFE))
        guard self.accounts.uidMin <= self.accounts.uidMax else {
            throw accounts.invalid("uid_max", "must not be below uid_min (\(self.accounts.uidMin))")
        }
        guard self.accounts.localUIDMin <= self.accounts.localUIDMax else {
            throw accounts.invalid("local_uid_max", "must not be below local_uid_min (\(self.accounts.localUIDMin))")
        }
        guard self.accounts.uidMin <= self.accounts.localUIDMin, self.accounts.localUIDMax <= self.accounts.uidMax else {
            throw accounts.invalid("local_uid_min", "the local UID range must lie inside uid_min...uid_max")
        }
        guard UserName.isWellFormed(self.accounts.group) else {
            throw accounts.invalid("group", "'\(self.accounts.group)' is not a valid group name")
        }
        if !self.accounts.namePattern.isEmpty {
            do { _ = try Regex(self.accounts.namePattern) } catch {
                throw accounts.invalid("name_pattern", "not a valid regular expression: \(error)")
            }
        }
        try accounts.finish()

        var ldap = try section("ldap", &root)
        self.ldap = LDAP(
            uri: try ldap.string("uri", default: ""),
            base: try ldap.string("base", default: ""),
            bindDN: try ldap.string("bind_dn", default: ""),
            bindPasswordFile: try ldap.string("bind_password_file", default: ""),
            startTLS: try ldap.bool("starttls", default: false),
            timeoutSeconds: try ldap.int("timeout_seconds", default: 5, in: 1...120),
            uidAttribute: try ldap.string("uid_attribute", default: "uid"),
            uidNumberAttribute: try ldap.string("uid_number_attribute", default: "uidNumber"),
            displayNameAttribute: try ldap.string("display_name_attribute", default: "cn"))
        let ldapURI = self.ldap.uri.lowercased()
        if !ldapURI.isEmpty {
            let schemes = ["ldap://", "ldaps://", "ldapi://"]
            guard schemes.contains(where: { ldapURI.hasPrefix($0) }) else {
                throw ldap.invalid("uri", "must start with ldap://, ldaps:// or ldapi://")
            }
            guard !self.ldap.base.isEmpty else { throw ldap.invalid("base", "a search base is required when uri is set") }
        }
        let attributes = [("uid_attribute", self.ldap.uidAttribute), ("uid_number_attribute", self.ldap.uidNumberAttribute),
                          ("display_name_attribute", self.ldap.displayNameAttribute)]
        for (key, value) in attributes {
            guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ldap.invalid(key, "'\(value)' is not an LDAP attribute name")
            }
        }
        if !self.ldap.bindDN.isEmpty, self.ldap.bindPasswordFile.isEmpty {
            throw ldap.invalid("bind_password_file", "bind_dn is set, so a root-only password file must be named")
        }
        if !self.ldap.bindPasswordFile.isEmpty, !self.ldap.bindPasswordFile.hasPrefix("/") {
            throw ldap.invalid("bind_password_file", "must be an absolute path")
        }
        try ldap.finish()

        var server = try section("server", &root)
        let backend = try server.string("backend", default: Server.Backend.local.rawValue)
        guard let chosenBackend = Server.Backend(rawValue: backend) else {
            throw server.invalid("backend", "'\(backend)' is not one of \(Server.Backend.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        self.server = Server(
            backend: chosenBackend,
            runtimeDir: try server.absolutePath("runtime_dir", default: "/run/hydra"),
            pythonEnv: try server.absolutePath("python_env", default: "/opt/hydra/jupyter"),
            command: try server.strings("command", default: ["jupyter-lab"]),
            idleTimeoutSeconds: try server.int("idle_timeout_seconds", default: 7200, in: 0...10_000_000),
            kernelIdleTimeoutSeconds: try server.int("kernel_idle_timeout_seconds", default: 3600, in: 0...10_000_000),
            startTimeoutSeconds: try server.int("start_timeout_seconds", default: 60, in: 1...3600),
            maxConcurrentStarts: try server.int("max_concurrent_starts", default: 4, in: 1...1000),
            logMaxBytes: try server.int("log_max_bytes", default: 1 << 20, in: 4096...(1 << 30)),
            runtimeDirSizeBytes: try server.memorySize("runtime_dir_size", default: 16 << 20),
            startMinAvailableBytes: try server.memorySize("start_min_available_memory", default: 512 << 20))
        guard !self.server.command.isEmpty, !self.server.command[0].isEmpty else {
            throw server.invalid("command", "must name a program")
        }
        if let size = self.server.runtimeDirSizeBytes, size < UInt64(4 * self.server.logMaxBytes) {
            throw server.invalid("runtime_dir_size", "must hold the server log and its predecessor with room to spare: at least 4 × log_max_bytes (\(4 * self.server.logMaxBytes) bytes)")
        }
        try server.finish()

        var gate = try section("gate", &root)
        self.gate = Gate(
            requestsPerPerson: try gate.int("requests_per_person", default: 16, in: 1...10_000),
            websocketsPerPerson: try gate.int("websockets_per_person", default: 64, in: 1...10_000),
            requestsTotal: try gate.int("requests_total", default: 256, in: 1...100_000),
            websocketsTotal: try gate.int("websockets_total", default: 1600, in: 1...100_000),
            responseTimeoutSeconds: try gate.int("response_timeout_seconds", default: 120, in: 1...86_400),
            websocketIdleTimeoutSeconds: try gate.int("websocket_idle_timeout_seconds", default: 3600, in: 1...604_800))
        try gate.finish()

        var admin = try section("admin", &root)
        self.admin = Admin(users: try admin.strings("users", default: []), group: try admin.string("group", default: ""))
        if let bad = self.admin.users.first(where: { !UserName.isWellFormed($0) }) {
            throw admin.invalid("users", "'\(bad)' is not a valid account name")
        }
        try admin.finish()

        var sync = try section("sync", &root)
        self.sync = Sync(
            mirrorDir: try sync.absolutePath("mirror_dir", default: "/var/cache/hydra/mirrors"),
            fetchIntervalSeconds: try sync.int("fetch_interval_seconds", default: 300, in: 0...86_400),
            fetchTimeoutSeconds: try sync.int("fetch_timeout_seconds", default: 20, in: 1...3600),
            visitSyncIntervalSeconds: try sync.int("visit_sync_interval_seconds", default: 60, in: 0...86_400),
            restoreDeleted: try sync.bool("restore_deleted", default: true),
            dataPath: try sync.string("data_path", default: ""),
            dataLinkName: try sync.string("data_link_name", default: "data"))
        if !self.sync.dataPath.isEmpty, !self.sync.dataPath.hasPrefix("/") {
            throw sync.invalid("data_path", "must be an absolute path")
        }
        guard Self.isPlainRelativePath(self.sync.dataLinkName) else {
            throw sync.invalid("data_link_name", "must be a plain name inside the home")
        }
        try sync.finish()

        var limits = try section("limits", &root)
        self.limits = try limits.limitSettings()
        try limits.finish()

        if var slurm = try root.subtable("slurm") {
            self.slurm = try slurm.slurmSettings()
            try slurm.finish()
        } else {
            self.slurm = nil
        }
        if self.server.backend == .slurm, self.slurm == nil {
            throw server.invalid("backend", "\"slurm\" needs a [slurm] table (the partition, time limit, ports ...)")
        }

        var courses: [Course] = []
        for var course in try root.tableArray("courses") {
            let entry = Course(
                repo: try course.string("repo"),
                branch: try course.string("branch", default: "main"),
                folder: try course.string("folder"))
            guard Self.isPlainRelativePath(entry.folder) else {
                throw course.invalid("folder", "must be a relative path inside the home, without '..'")
            }
            guard Self.isValidBranch(entry.branch) else {
                throw course.invalid("branch", "'\(entry.branch)' is not a valid git branch name")
            }
            guard !entry.repo.isEmpty, !entry.repo.hasPrefix("-") else {
                throw course.invalid("repo", "must be a git URL or an absolute path")
            }
            guard !courses.contains(where: { $0.folder == entry.folder }) else {
                throw course.invalid("folder", "two courses share the folder '\(entry.folder)'")
            }
            try course.finish()
            courses.append(entry)
        }
        self.courses = courses

        let implicit = Profile(name: Profile.implicitName, title: "Notebook server", description: "", backend: self.server.backend,
                               pythonEnv: self.server.pythonEnv, limits: self.limits.defaults, slurm: self.slurm, groups: [],
                               isDefault: true)
        var profiles: [Profile] = []
        for var table in try root.tableArray("profiles") {
            let profile = try table.profile(server: self.server, limits: self.limits, slurm: self.slurm)
            guard !profiles.contains(where: { $0.name == profile.name }) else {
                throw table.invalid("name", "two profiles are named '\(profile.name)'")
            }
            if profile.isDefault, let other = profiles.first(where: \.isDefault) {
                throw table.invalid("default", "'\(other.name)' is the default already; one profile may be")
            }
            profiles.append(profile)
        }
        self.hasProfiles = !profiles.isEmpty
        self.profiles = profiles.isEmpty ? [implicit] : profiles
    }

    /// The one rule for a branch name, from the configuration or a command line: what git
    /// accepts in `refs/heads/...` without ever reading it as an option or a range.
    package static func isValidBranch(_ branch: String) -> Bool {
        !branch.isEmpty && !branch.hasPrefix("-") && !branch.contains("..")
            && branch.allSatisfy { $0.isASCII && !$0.isWhitespace && !"~^:?*[\\".contains($0) }
    }

    /// A relative path that stays inside its parent: no leading '/', no '..' or '.' parts, no NUL.
    package static func isPlainRelativePath(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.utf8.contains(0)
            && path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != ".." && $0 != "." }
    }
}
