import HydraSite
import HydraAccounts
import HydraServers
import HydraSystem
import FoundationEssentials

/// The people's choices of profile, remembered in the front's own folder
/// (`<runtime_dir>/.front/profiles/NAME`: root's folder, the web server's group), where the
/// person cannot write. ipynb-launch checks every choice against the person's groups again.
struct ProfileChoices: Sendable {
    let directory: String

    init(config: HydraConfig) {
        directory = "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)/profiles"
    }

    /// The person's last choice and when it was made (or last confirmed by a start still under way).
    func last(for name: UserName) -> (profile: String, at: Double)? {
        guard let folder = try? DirectoryHandle.open(directory), let info = try? folder.entryStatus(name.value),
              case .file(let bytes)? = try? folder.readEntry(name.value, maxBytes: 64) else { return nil }
        let profile = String(decoding: bytes, as: UTF8.self)
        return Profile.isValidName(profile) ? (profile, Double(info.modifiedNanoseconds) / 1e9) : nil
    }

    func remember(_ profile: String, for name: UserName) throws(SystemError) {
        // Only the last folder is the front's to make: the folders above are root's (addldapuser's).
        let (front, last) = FileSystem.split(directory)
        let folder = try DirectoryHandle.open(front).subdirectory(last, createMode: 0o770)
        try folder.writeAtomically(name.value, Array(profile.utf8), staging: folder, mode: 0o660)
    }
}

/// A person allowed several profiles chooses on a visit that finds no server running (the choice
/// stays good for as long as a start may take, so the starting page's reloads go on with it), and
/// at /hydra/profile at any time (their server is replaced). A person allowed one never sees a choice.
extension Front {
    /// What the person's groups allow; `nil` when the site has no `[[profiles]]` (nothing to choose).
    func allowedProfiles(_ name: UserName) -> [Profile]? {
        guard config.hasProfiles else { return nil }
        let groups = accounts.user(named: name.value).map(accounts.groupNames) ?? []
        return config.profiles(forMemberOf: groups)
    }

    /// How long a choice carries a start on without asking again.
    var choiceWindowSeconds: Double { Double(config.server.startTimeoutSeconds) + 60 }

    enum StartProfile {
        /// Start with this profile (nil: ipynb-launch's choice, the only one allowed, the recorded
        /// server's or the site's implicit one); `local`: whether that server runs on this machine.
        case use(String?, local: Bool)
        /// Ask the person first.
        case ask(FrontResponse)
    }

    /// For a visit that must start a server: the profile to ask ipynb-launch for (`chosen`: the
    /// one just posted), or the page where the person chooses one.
    func profileForStart(_ name: UserName, chosen: String?) -> StartProfile {
        func isLocal(_ profile: Profile?) -> Bool { (profile ?? config.profiles[0]).backend == .local }
        func named(_ wanted: String) -> Profile? { config.profiles.first { $0.name == wanted } }
        if let chosen { return .use(chosen, local: isLocal(named(chosen))) }
        let allowed = allowedProfiles(name) ?? []
        guard allowed.count > 1 else { return .use(nil, local: isLocal(allowed.first)) }
        // A server of theirs is recorded (a Slurm job the fast path cannot see, or one that
        // stopped answering): ipynb-launch keeps its profile; /hydra/profile changes it.
        if let recorded = ServerCensus(config: config, accounts: accounts).profile(of: name.value) {
            return .use(nil, local: isLocal(named(recorded)))
        }
        if let (profile, at) = choices.last(for: name), Date().timeIntervalSince1970 - at < choiceWindowSeconds,
           let remembered = allowed.first(where: { $0.name == profile }) {
            return .use(profile, local: isLocal(remembered))
        }
        return .ask(profilePage(name, allowed: allowed, switching: false))
    }

    /// The list of profiles with the running server's (else the last choice, else the default)
    /// selected and marked; posts to /hydra/profile.
    func profilePage(_ name: UserName, allowed: [Profile], switching: Bool) -> FrontResponse {
        let xsrf: String
        do {
            xsrf = try forms.mint(.profile, for: name)
        } catch {
            return incident(name, "profile page: no form token: \(error)")
        }
        // The running server's profile may be another than the last choice (a start over ssh).
        let running = switching ? ServerCensus(config: config, accounts: accounts).profile(of: name.value) : nil
        let selected = [running, choices.last(for: name)?.profile].compactMap { $0 }.lazy
            .compactMap { wanted in allowed.first { $0.name == wanted } }.first ?? HydraConfig.defaultProfile(of: allowed)
        let rows: [[String: Any]] = allowed.map { profile in
            ["name": profile.name, "title": profile.title, "description": profile.description, "checked": profile.name == selected?.name,
             "running": profile.name == running]
        }
        return page(200, "profile", title: switching ? "Change your notebook server's profile" : "Choose your notebook server",
                    values: ["profiles": rows, "xsrf": xsrf, "switching": switching, "several": allowed.count > 1])
    }

    /// GET /hydra/profile: the choice, saying that the server will be restarted.
    func profileSwitchPage(_ request: FrontRequest, name: UserName) -> FrontResponse {
        guard let allowed = allowedProfiles(name) else { return page(404, "not-found", title: "This site has no profiles") }
        return profilePage(name, allowed: allowed, switching: true)
    }

    /// POST /hydra/profile: a choice from this site's own page, for a profile the person's groups
    /// allow; remembered, then the server started with it (replacing one of another profile).
    func chooseProfile(_ request: FrontRequest, name: UserName) -> FrontResponse {
        if let refusal = forms.refusal(of: request, .profile, for: name) {
            logger.warning("profile choice refused: \(refusal)", metadata: ["user": "\(name)"])
            return page(403, "stale-form", title: "This form has expired", values: ["page": "/hydra/profile"])
        }
        guard let chosen = request.formValue("profile"), Profile.isValidName(chosen) else {
            return page(400, "not-found", title: "No such profile")
        }
        guard let allowed = allowedProfiles(name), allowed.contains(where: { $0.name == chosen }) else {
            logger.warning("profile choice refused: \(LogSafe.quote(chosen)) is not one of the profiles the person's groups allow",
                           metadata: ["user": "\(name)"])
            return page(403, "forbidden", title: "Not available for this account", values: ["name": name.value])
        }
        do {
            try choices.remember(chosen, for: name)
        } catch {
            return incident(name, "could not remember the profile chosen: \(error)")
        }
        logger.info("chose the profile \(chosen)", metadata: ["user": "\(name)"])
        var response = visit(request, name: name, profile: chosen)
        // A starting page reloads `/` (which goes on with the choice), not this form's address.
        response.headers = response.headers.map { $0.0 == "Refresh" ? ("Refresh", "\($0.1); url=/") : $0 }
        return response
    }
}
