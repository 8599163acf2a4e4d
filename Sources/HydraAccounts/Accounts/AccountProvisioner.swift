import HydraSite
import HydraSystem
import FoundationEssentials

/// What addldapuser did (or, in a dry run, would do), for its `--json` answer and its log line.
package struct ProvisionReport: Sendable, Equatable, Codable {
    package enum Outcome: String, Sendable, Codable {
        case created, alreadyFine = "already-fine"
    }
    package let user: String
    package let uid: UInt32
    package let outcome: Outcome
    /// "ldap", "local" (a local UID) or "existing".
    package let source: String
    package let home: String
    package let runtimeDir: String
    package let actions: [String]
    /// The actions that undid a change someone made (a subset of `actions`); a runtime
    /// directory that is simply gone after a reboot needs none.
    package let repairs: [String]
    /// What the admin should hear about once (no tmpfs on this machine).
    package let warnings: [String]
    package let dryRun: Bool

    package init(user: String, uid: UInt32, outcome: Outcome, source: String, home: String, runtimeDir: String, actions: [String],
                 repairs: [String], warnings: [String], dryRun: Bool) {
        (self.user, self.uid, self.outcome, self.source, self.home, self.runtimeDir) = (user, uid, outcome, source, home, runtimeDir)
        (self.actions, self.repairs, self.warnings, self.dryRun) = (actions, repairs, warnings, dryRun)
    }

    package var exitStatus: ExitStatus { outcome == .created ? .done : .alreadyFine }

    enum CodingKeys: String, CodingKey {
        case user, uid, outcome, source, home, actions, repairs, warnings
        case runtimeDir = "runtime_dir", dryRun = "dry_run"
    }
}

/// Makes a Unix account ready for hydra: the account (from its LDAP entry, or a local UID
/// when the directory definitely has none and the site allows it), membership of the hydra
/// group, and the runtime directory. Runs as root; every step is an argument vector.
package struct AccountProvisioner: Sendable {
    /// How the report's action for a new account begins (the front counts new accounts by it).
    package static let createAction = "create account"
    package let config: HydraConfig
    package let policy: AccountPolicy
    package let directory: DirectoryLookup
    /// Root-owned state: the high-water mark of local UIDs, so one is never handed out twice.
    package let stateDir: String
    package let dryRun: Bool

    /// Root's records: the accounts hydra made, the next local UID, the people's ceilings.
    package static let stateDir = "/var/lib/hydra"

    package init(config: HydraConfig, dryRun: Bool = false, stateDir: String = AccountProvisioner.stateDir) {
        self.config = config
        self.policy = AccountPolicy(config: config)
        self.directory = DirectoryLookup(settings: config.ldap)
        self.stateDir = stateDir
        self.dryRun = dryRun
    }

    package func provision(_ rawName: String) throws -> ProvisionReport {
        let name = try UserName(rawName, extraPattern: config.accounts.namePattern)
        try policy.checkName(name)
        guard let hydraGroup = UserDatabase.group(named: config.accounts.group) else {
            throw ConfigError.invalidValue(path: HydraConfig.defaultPath, line: 0, key: "accounts.group",
                                           reason: "the group '\(config.accounts.group)' does not exist (groupadd --system \(config.accounts.group))")
        }
        guard let webGroup = UserDatabase.group(named: config.site.webServerGroup) else {
            throw ConfigError.invalidValue(path: HydraConfig.defaultPath, line: 0, key: "site.web_server_group",
                                           reason: "the group '\(config.site.webServerGroup)' does not exist")
        }

        // One account change at a time: useradd and usermod do not wait for each other's locks,
        // and twenty simultaneous first visits must create exactly one account.
        let lock: FileLock? = dryRun ? nil : try FileLock(".accounts.lock", in: DirectoryHandle.open(stateDir, createMode: 0o755))
        defer { withExtendedLifetime(lock) {} }

        var actions: [String] = []
        let outcome: ProvisionReport.Outcome
        let source: String
        let entry: PasswdEntry
        if let existing = UserDatabase.user(named: name.value) {
            try policy.checkExisting(existing, name: name)
            try confirm(existing, name: name)
            entry = existing
            outcome = .alreadyFine
            source = "existing"
        } else {
            let chosen = try chooseUID(for: name)
            try policy.checkNew(uid: chosen.uid, name: name)
            actions.append("\(Self.createAction) \(name) with UID \(chosen.uid) (\(chosen.source.rawValue))")
            if !dryRun {
                try createAccount(name, uid: chosen.uid, gecos: chosen.displayName)
                try recordAccount(name, uid: chosen.uid)
            }
            entry = UserDatabase.user(named: name.value)
                ?? PasswdEntry(name: name.value, uid: chosen.uid, gid: chosen.uid, gecos: chosen.displayName, home: home(of: name),
                               shell: config.accounts.shell)
            outcome = .created
            source = chosen.source.rawValue
        }

        if !UserDatabase.groupNames(of: entry).contains(hydraGroup.name) {
            actions.append("add \(name) to group \(hydraGroup.name)")
            if !dryRun { try run("/usr/sbin/usermod", ["--append", "--groups", hydraGroup.name, "--", name.value]) }
        }
        let runtime = RuntimeDirectory(config: config)
        var repairs: [String] = [], warnings: [String] = []
        if dryRun {
            if !runtime.isReady(for: name, uid: entry.uid, webGID: webGroup.gid) {
                actions.append("prepare \(runtime.path(for: name))")
            }
        } else {
            let preparation = try runtime.prepare(for: name, uid: entry.uid, webGID: webGroup.gid)
            actions += preparation.repairs + preparation.steps
            repairs = preparation.repairs
            warnings = preparation.warnings
        }
        // Under systemd the server runs in the user's own manager, which lingering keeps running.
        let supervision = Supervision(config: config)
        try supervision.requireAvailable()
        if supervision.mode == .systemd, !FileSystem.exists(Supervision.lingerFile(name)) {
            actions.append("enable lingering for \(name) (loginctl enable-linger)")
            if !dryRun { try run("/usr/bin/loginctl", ["enable-linger", "--", name.value]) }
        }
        if supervision.mode == .systemd {
            let ceiling = SliceCeiling(uid: entry.uid, limits: config.ceiling(for: name, memberOf: UserDatabase.groupNames(of: entry)))
            if !ceiling.isRecorded(stateDir: stateDir, name: name) {
                actions.append("set the ceiling of \(ceiling.unit): \(ceiling.properties.joined(separator: " "))")
                if !dryRun { try ceiling.apply(stateDir: stateDir, name: name, run: run) }
            }
        }
        return ProvisionReport(user: name.value, uid: entry.uid, outcome: outcome, source: source, home: entry.home,
                               runtimeDir: runtime.path(for: name), actions: actions, repairs: repairs, warnings: warnings, dryRun: dryRun)
    }

    private func home(of name: UserName) -> String { "\(config.accounts.homeBase)/\(name.value)" }

    /// Check 8: an existing account is used only if hydra created it (root's record in
    /// `<stateDir>/accounts/NAME`) or the directory has this name with this very UID.
    private func confirm(_ account: PasswdEntry, name: UserName) throws {
        if recordedUID(of: name) == account.uid { return }
        switch try directory.person(named: name) {
        case .found(let person) where person.uidNumber == account.uid:
            if !dryRun { try recordAccount(name, uid: account.uid) }
        case .found(let person):
            throw AccountRefusal(check: .notConfirmed, detail: "the local account \(name) has UID \(account.uid), the directory's \(name) has UID \(person.uidNumber)")
        case .noSuchEntry, .notConfigured:
            throw AccountRefusal(check: .notConfirmed, detail: "\(name) is a local account that hydra did not create and the directory does not know")
        }
    }

    private func recordedUID(of name: UserName) -> UInt32? {
        guard let records = try? DirectoryHandle.open("\(stateDir)/accounts"),
              case .file(let bytes) = try? records.readEntry(name.value, maxBytes: 64) else { return nil }
        return UInt32(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private func recordAccount(_ name: UserName, uid: UInt32) throws {
        let state = try DirectoryHandle.open(stateDir, createMode: 0o755)
        let records = try state.subdirectory("accounts", createMode: 0o700)
        let staging = try state.subdirectory("staging", createMode: 0o700)
        try records.writeAtomically(name.value, Array("\(uid)\n".utf8), staging: staging, mode: 0o600)
    }

    /// The UID a new account gets, and where it comes from.
    struct ChosenUID {
        enum Source: String { case ldap, local }
        let uid: UInt32
        let displayName: String
        let source: Source
    }

    private func chooseUID(for name: UserName) throws -> ChosenUID {
        switch try directory.person(named: name) {
        case .found(let person):
            return ChosenUID(uid: person.uidNumber, displayName: person.displayName, source: .ldap)
        case .noSuchEntry, .notConfigured:
            guard config.accounts.localUIDFallback else {
                throw ProvisioningFailure.notInDirectory(name)
            }
            return ChosenUID(uid: try allocateLocalUID(), displayName: "", source: .local)
        }
    }

    /// The next free UID of the local range, above every one handed out before.
    private func allocateLocalUID() throws -> UInt32 {
        let markFile = "\(stateDir)/local-uid-next"
        let stored = FileSystem.readText(markFile).flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        var candidate = max(stored ?? 0, UInt32(config.accounts.localUIDMin))
        while UserDatabase.user(uid: candidate) != nil || UserDatabase.group(gid: candidate) != nil {
            candidate += 1
        }
        guard candidate <= UInt32(config.accounts.localUIDMax) else {
            throw ProvisioningFailure.localUIDRangeUsedUp(min: config.accounts.localUIDMin, max: config.accounts.localUIDMax)
        }
        if !dryRun {
            do {
                try FileSystem.writeAtomically(markFile, Array("\(candidate + 1)\n".utf8), mode: 0o644)
            } catch {
                throw ProvisioningFailure.cannotRecordLocalUID(file: markFile, error: "\(error)")
            }
        }
        return candidate
    }

    private func createAccount(_ name: UserName, uid: UInt32, gecos: String) throws {
        // The password stays locked ('!'): people log in with Kerberos (ssh) or the web site.
        try run("/usr/sbin/useradd", [
            "--uid", String(uid),
            "--comment", gecos,
            "--home-dir", home(of: name),
            "--create-home",
            "--shell", config.accounts.shell,
            "--no-log-init",
            "--key", "HOME_MODE=0700",
            "--", name.value,
        ])
    }

    private func run(_ program: String, _ arguments: [String]) throws {
        let result = try ProcessRunner.run(program, arguments)
        guard result.status == 0 else {
            throw ProvisioningFailure.commandFailed(command: "\(program) \(arguments.joined(separator: " "))", exitStatus: result.status,
                                                   error: result.errorText.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
