import HydraSite
import HydraAccounts
import HydraCourses
import HydraServers
import HydraPages
import HydraSystem
import FoundationEssentials
import Logging

/// The FastCGI front: one request in, one response out. Runs as the web server's user; every
/// name goes through the shared validation before anything else sees it. A visit to `/`:
/// the account (addldapuser, only when the unprivileged check finds something missing), the
/// server (ipynb-launch start, through the start gate), then the auto-login page. A visit
/// while the server runs needs no helper: a returning browser is sent to its lab, another one
/// gets the auto-login page, and the sync runs after the answer.
package struct Front: Sendable {
    package let config: HydraConfig
    package let pages = Pages()
    package let logger: Logger
    package let helpers: any HelperRunning
    package let accounts: any AccountDatabase
    package let gate: StartGate
    package let policy: AccountPolicy
    /// Where the site's metrics go (hydra-gate keeps them).
    package let link: GateLink
    package let incidents: IncidentLog
    /// The check every state-changing form passes (the admin's Stop, a profile's choice).
    package let forms: FormGuard
    let choices: ProfileChoices

    package init(config: HydraConfig, logger: Logger, helpers: (any HelperRunning)? = nil, accounts: any AccountDatabase = SystemAccounts()) {
        self.config = config
        self.logger = logger
        self.helpers = helpers ?? HelperCalls(config: config)
        self.accounts = accounts
        self.gate = StartGate(config: config)
        self.policy = AccountPolicy(config: config, database: accounts)
        self.link = GateLink(config: config)
        self.incidents = IncidentLog(config: config)
        self.forms = FormGuard(config: config)
        self.choices = ProfileChoices(config: config)
    }

    package func handle(_ request: FrontRequest) -> FrontResponse {
        switch request.path {
        case "/hydra/health":
            return health()
        case "/hydra/whoami":
            return withUser(request) { name, remoteUser in
                page(200, "whoami", title: "hydra: \(name)", values: ["name": name.value, "remoteUser": remoteUser])
            }
        case "/hydra/admin":
            guard request.method == "GET" || request.method == "HEAD" else { return page(405, "not-found", title: "Not allowed") }
            return withAdmin(request) { admin in adminPage(request, admin: admin) }
        case "/hydra/admin/stop":
            guard request.method == "POST" else { return page(405, "not-found", title: "Not allowed") }
            return withAdmin(request) { admin in adminStop(request, admin: admin) }
        case "/hydra/metrics":
            return metricsPage(request)
        case "/hydra/profile":
            switch request.method {
            case "GET", "HEAD": return withUser(request) { name, _ in profileSwitchPage(request, name: name) }
            case "POST": return withUser(request) { name, _ in chooseProfile(request, name: name) }
            default: return page(405, "not-found", title: "Not allowed")
            }
        case "/":
            guard request.method == "GET" || request.method == "HEAD" else {
                return page(405, "not-found", title: "Not allowed")
            }
            var response = withUser(request) { name, _ in visit(request, name: name) }
            // Counted after the answer: the metrics cost the visit nothing.
            let (link, outcome, then) = (link, response.outcome ?? "status \(response.status)", response.afterwards)
            response.afterwards = {
                link.send(.visit(outcome: outcome))
                then?()
            }
            return response
        default:
            return page(404, "not-found", title: "Not found")
        }
    }

    /// REMOTE_USER, realm-stripped and validated, or the page that says why not.
    func withUser(_ request: FrontRequest, _ body: (UserName, String) -> FrontResponse) -> FrontResponse {
        guard let remoteUser = request.remoteUser else {
            let incident = Secret.hexToken(byteCount: 4)
            logger.error("no REMOTE_USER: the site's authentication is not configured", metadata: ["incident": "\(incident)", "path": "\(LogSafe.quote(request.path))"])
            return page(500, "no-auth", title: "Sign-in is not configured", values: ["incident": incident])
        }
        do {
            let name = try RemoteUser.userName(from: remoteUser, realm: config.site.kerberosRealm, extraPattern: config.accounts.namePattern)
            return body(name, remoteUser)
        } catch {
            logger.warning("refused REMOTE_USER: \(error.description)")
            return page(400, "bad-name", title: "Invalid account name", values: ["remoteUser": remoteUser, "reason": error.reason])
        }
    }

    /// `profile`: the person's choice just posted (their server is started with it, replacing a
    /// running one of another profile); nil for a visit to `/`.
    func visit(_ request: FrontRequest, name: UserName, profile chosen: String? = nil) -> FrontResponse {
        let started = monotonicSeconds()
        let https = request.isHTTPS || config.site.publicURL.lowercased().hasPrefix("https:")
        if request.queryValue("logged_out") != nil {
            return page(200, "logged-out", title: "Logged out", values: ["name": name.value], extraHeaders: [
                ("Set-Cookie", cookie(Self.serverCookieName, "", https: https, maxAge: 0)),
                ("Set-Cookie", cookie(Self.recentCookieName, "", https: https, maxAge: 0))])
        }
        let next = safeNext(request.queryValue("next"), for: name)
        do {
            // The account policy's unprivileged checks first: root, system and privileged
            // accounts are refused here, without even a sudo call.
            try policy.checkName(name)
            let account = accounts.user(named: name.value)
            if let account { try policy.checkExisting(account, name: name) }
            if !isAccountReady(name, account: account) {
                let outcome = try helpers.addLDAPUser(name)
                let answer = outcome.decode(ProvisionReport.self)
                noteProvisioning(outcome, answer)
                if let failure = failurePage(for: outcome, name: name, action: "addldapuser") { return failure }
                if let answer {
                    for warning in answer.warnings {
                        logger.warning("addldapuser: \(LogSafe.quote(warning, limit: 600))", metadata: ["user": "\(name)"])
                    }
                    // Repairs mean someone changed what addldapuser set up; the rest is routine
                    // (a new account, a runtime directory gone with a reboot).
                    if !answer.repairs.isEmpty {
                        logger.warning("addldapuser repaired: \(LogSafe.quote(answer.repairs.joined(separator: "; "), limit: 600))", metadata: ["user": "\(name)"])
                    } else if !answer.actions.isEmpty {
                        logger.info("addldapuser prepared: \(LogSafe.quote(answer.actions.joined(separator: "; "), limit: 600))", metadata: ["user": "\(name)"])
                    }
                }
            } else if chosen == nil, let account,
                      let server = RunningServer(name, uid: account.uid, config: config) ?? RunningServer(jobOf: name, config: config, gate: link) {
                if let pid = server.pid {
                    if let notice = limitNotice(name, serverPID: pid) { return notice }
                    // A server here: the gate must not look for a job of theirs (a profile changed behind the front's back).
                    if config.clusterSlurm != nil { JobEndpoint.remove(for: name, config: config) }
                }
                // Jupyter sends a browser whose login cookie it does not accept back here with
                // `next`: that one always gets the auto-login page, so there is no loop.
                let returning = request.cookie(Self.serverCookieName) == server.tag && request.queryValue("next") == nil
                if var response = returning ? .redirect(next, extraHeaders: recentCookie(https: https), outcome: "lab")
                    : server.token().map({ autoLogin(name, token: $0, serverTag: server.tag, next: next, https: https) }) {
                    response.afterwards = deferredSync(name, ofJob: server.pid == nil)
                    logger.info("visit: running server\(returning ? ", sent to the lab" : "")", metadata: [
                        "user": "\(name)", "ms": "\(Int((monotonicSeconds() - started) * 1000))"])
                    return response
                }
            }
            let profile: String?, startsLocally: Bool
            switch profileForStart(name, chosen: chosen) {
            case .use(let asked, let local): (profile, startsLocally) = (asked, local)
            case .ask(let choicePage): return choicePage
            }
            let runtime = RuntimeDirectory(base: config.server.runtimeDir)
            guard let turn = try gate.userTurn(name) else {
                return startingPage(name, reason: "Your notebook server is starting.")
            }
            var held = [turn]
            let listening = try account.map { ServerSocket.isListening(in: try DirectoryHandle.open(runtime.path(for: name)), ownerUID: $0.uid) } ?? false
            if !listening {
                // A Slurm job's memory is its node's, not this machine's.
                if startsLocally, let page = noRoomPage(name) { return page }
                guard let slot = try gate.startSlot() else {
                    link.send(.startDeferred)
                    logger.info("start deferred: \(gate.slots) servers are starting", metadata: ["user": "\(name)"])
                    return startingPage(name, reason: "Many notebook servers are starting right now; yours is next.")
                }
                held.append(slot)
            }
            refreshMirrors()
            let (outcome, startAnswer) = try withExtendedLifetime(held) { try runStart(name, profile: profile) }
            if outcome.abandoned {
                logger.info("stopped waiting for the start (the front is exiting, or it took \(Int(HelperCalls.longestVisitWaitSeconds)) s); it goes on and the visit reloads",
                            metadata: ["user": "\(name)"])
                return startingPage(name, reason: "Your notebook server is starting.")
            }
            if outcome.exitStatus == .busy {
                logger.info("visit: another start, stop or sync of this person's server holds their lock: \(LogSafe.quote(outcome.message, limit: 400))",
                            metadata: ["user": "\(name)"])
                return startingPage(name, reason: "Your notebook server is busy: another start or stop of it is still under way "
                                    + "(perhaps one you began yourself, for example with ipynb-launch). This page tries again every 5 seconds.",
                                    refreshSeconds: 5, outcome: "server-busy")
            }
            if outcome.exitStatus == .waiting, let queued = startAnswer?.queued {
                logger.info("visit: job \(queued.id) queued (\(queued.state), \(queued.reason))", metadata: ["user": "\(name)"])
                // The reloads of the starting page go on with the same choice while the job waits.
                if let profile { try? choices.remember(profile, for: name) }
                return startingPage(name, reason: Self.queuedReason(queued), refreshSeconds: 5)
            }
            if let failure = failurePage(for: outcome, name: name, action: "ipynb-launch start") { return failure }
            guard let answer = startAnswer, answer.token.count >= 32 else {
                return incident(name, "ipynb-launch start gave no usable answer: \(outcome.message)")
            }
            let backends = Set(config.profiles.map(\.backend))
            switch answer.place {
            case .job(let job) where backends.contains(.slurm):
                // hydra-gate connects there (after checking it against the cluster): written here,
                // in the front's own folder, from the helper's answer, never by the person.
                guard let endpoint = job.endpoint else {
                    return incident(name, "ipynb-launch start named no job endpoint: \(outcome.message)")
                }
                try endpoint.write(for: name, config: config)
            case .local where backends.contains(.local):
                // A server here now: the gate no longer looks for a job of theirs (a profile changed).
                if backends.contains(.slurm) { JobEndpoint.remove(for: name, config: config) }
            default:
                // The gate routes by the front's configuration: a server it would not find is no lab.
                return incident(name, "ipynb-launch start answered with a server at \(answer.place.location), which no profile of hydra.toml runs")
            }
            logger.info("visit: \(answer.outcome) server", metadata: [
                "user": "\(name)", "ms": "\(Int((monotonicSeconds() - started) * 1000))", "start_ms": "\(Int(outcome.seconds * 1000))"])
            return autoLogin(name, token: answer.token, serverTag: RunningServer.tag(in: runtime.path(for: name)), next: next, https: https)
        } catch let refusal as AccountRefusal {
            logger.warning("visit refused: \(refusal)", metadata: ["user": "\(name)"])
            return page(403, "forbidden", title: "Not available for this account", values: ["name": name.value])
        } catch {
            return incident(name, "\(error)")
        }
    }

    /// Whether the account is ready, judged without privilege: it exists, is in the hydra
    /// group, and its runtime directory and the front's lock folder are as addldapuser leaves
    /// them; under systemd, also lingering, and the ceiling of the person's slice as their groups
    /// and the site's profiles make it today.
    func isAccountReady(_ name: UserName, account: PasswdEntry?) -> Bool {
        guard let account else { return false }
        let groups = accounts.groupNames(of: account)
        guard groups.contains(config.accounts.group) else { return false }
        if Supervision(config: config).mode == .systemd {
            let ceiling = SliceCeiling(uid: account.uid, limits: config.ceiling(for: name, memberOf: groups))
            guard FileSystem.exists(Supervision.lingerFile(name)), ceiling.isRecorded(stateDir: AccountProvisioner.stateDir, name: name) else {
                return false
            }
        }
        return RuntimeDirectory.isReady(for: name, uid: account.uid, config: config, database: accounts) && FileSystem.exists(gate.directory)
    }

    /// The sync a visit to a running server leaves for after its answer, at most once per
    /// `sync.visit_sync_interval_seconds` per user; nil when it ran more recently. On this
    /// machine, through the start (which also replaces a server that stopped answering); for
    /// a Slurm job, the sync alone, so that a visit asks nothing of Slurm (a job's server that
    /// stopped answering: the gate forgets its endpoint, and the next visit starts one).
    func deferredSync(_ name: UserName, ofJob: Bool = false) -> (@Sendable () -> Void)? {
        let stamp = "\(gate.directory)/synced-\(name.value)"
        if let info = FileStatus.following(stamp),
           Int(Date().timeIntervalSince1970) - Int(info.modifiedNanoseconds / 1_000_000_000) < config.sync.visitSyncIntervalSeconds {
            return nil
        }
        guard (try? FileSystem.touch(stamp, mode: 0o660)) != nil else { return nil }
        return { [self] in
            // After the helper another request is running for this user: a change that arrived
            // since it began would otherwise wait for the next visit.
            guard let turn = try? gate.userTurn(name, patience: Double(config.server.startTimeoutSeconds)) else { return }
            refreshMirrors()
            if ofJob {
                withExtendedLifetime(turn) { runSync(name) }
                return
            }
            do {
                let (outcome, answer) = try withExtendedLifetime(turn) { try runStart(name) }
                if answer?.outcome == .started {
                    // The visit found a server; one that ended or stopped answering since is replaced.
                    logger.warning("sync after the visit: the server was gone or did not answer for \(Int(ServerLifecycle.answerPatienceSeconds)) s, a new one was started (its kernels are gone; the server's log says why)",
                                   metadata: ["user": "\(name)"])
                } else if answer == nil, outcome.exitStatus != .done && outcome.exitStatus != .alreadyFine && outcome.exitStatus != .busy {
                    logger.warning("sync after the visit: ipynb-launch start exited \(outcome.status): \(LogSafe.quote(outcome.message, limit: 400))",
                                   metadata: ["user": "\(name)"])
                }
            } catch {
                logger.warning("sync after the visit: \(error)", metadata: ["user": "\(name)"])
            }
        }
    }

    /// `ipynb-launch start`, counted for the metrics: the helper's outcome and its decoded answer
    /// (nil when it gave none). A course that could not be synced leaves the user's files as
    /// they were; the admin hears why.
    func runStart(_ name: UserName, profile: String? = nil) throws -> (HelperCalls.Outcome, LaunchReport?) {
        let outcome = try helpers.startServer(name, profile: profile)
        guard !outcome.abandoned else { return (outcome, nil) }
        link.send(.helper(name: "ipynb-launch start", exitStatus: outcome.status))
        guard let answer = outcome.decode(LaunchReport.self) else {
            link.send(.start(outcome: "failed", seconds: outcome.seconds))
            return (outcome, nil)
        }
        link.send(.start(outcome: answer.outcome.rawValue, seconds: outcome.seconds, profile: answer.profile))
        for sync in answer.sync {
            link.send(.courseSync(folder: sync.folder, ok: sync.error == nil))
            if let error = sync.error {
                logger.warning("course folder \(LogSafe.quote(sync.folder)) not synced: \(LogSafe.quote(error, limit: 400))", metadata: ["user": "\(name)"])
            }
        }
        return (outcome, answer)
    }

    /// `ipynb-launch sync`, its courses counted for the metrics.
    func runSync(_ name: UserName) {
        do {
            let outcome = try helpers.syncCourses(name)
            link.send(.helper(name: "ipynb-launch sync", exitStatus: outcome.status))
            for sync in outcome.decode([SyncReport].self) ?? [] {
                link.send(.courseSync(folder: sync.folder, ok: sync.error == nil))
                if let error = sync.error {
                    logger.warning("course folder \(LogSafe.quote(sync.folder)) not synced: \(LogSafe.quote(error, limit: 400))", metadata: ["user": "\(name)"])
                }
            }
        } catch {
            logger.warning("sync after the visit: \(error)", metadata: ["user": "\(name)"])
        }
    }

    /// addldapuser's run, counted for the metrics: its exit, a new account, a directory down.
    func noteProvisioning(_ outcome: HelperCalls.Outcome, _ answer: ProvisionReport?) {
        link.send(.helper(name: "addldapuser", exitStatus: outcome.status))
        if outcome.exitStatus == .ldapUnavailable { link.send(.ldapUnavailable) }
        if answer?.actions.contains(where: { $0.hasPrefix(AccountProvisioner.createAction) }) == true {
            link.send(.accountCreated)
        }
    }

    /// The cookie that lets a returning browser skip the auto-login page: the running server's
    /// tag, so it is stale once that server is replaced. It grants nothing: Apache checks
    /// REMOTE_USER and Jupyter its own login cookie.
    static let serverCookieName = "hydra-server"

    /// The cookie that lets Apache itself send a returning browser from `/` to its lab (see
    /// apache/hydra.conf), for as long as the front would not sync after a visit anyway
    /// (`sync.visit_sync_interval_seconds`); then the browser drops it and the front answers
    /// again. It grants nothing either: the lab is REMOTE_USER's own.
    static let recentCookieName = "hydra-recent"

    func recentCookie(https: Bool) -> [(String, String)] {
        let seconds = config.sync.visitSyncIntervalSeconds
        return seconds > 0 ? [("Set-Cookie", cookie(Self.recentCookieName, "1", https: https, maxAge: seconds))] : []
    }

    func cookie(_ name: String, _ value: String, https: Bool, maxAge: Int? = nil) -> String {
        "\(name)=\(value); Path=/; HttpOnly; SameSite=Lax" + (maxAge.map { "; Max-Age=\($0)" } ?? "") + (https ? "; Secure" : "")
    }

    /// The course mirrors, fetched when stale by whichever visit comes first; never fatal.
    func refreshMirrors() {
        for course in config.courses {
            do { try Mirror(config: config, course: course).refreshIfStale() } catch {
                logger.warning("mirror of \(course.repo) not refreshed: \(error)")
            }
        }
    }

    /// A page a person understands for a helper that failed, or nil when it succeeded.
    func failurePage(for outcome: HelperCalls.Outcome, name: UserName, action: String) -> FrontResponse? {
        switch outcome.exitStatus {
        case .done?, .alreadyFine?:
            return nil
        case .refused?, .invalidName?:
            logger.warning("\(action) refused: \(LogSafe.quote(outcome.message, limit: 400))", metadata: ["user": "\(name)"])
            return page(403, "forbidden", title: "Not available for this account", values: ["name": name.value])
        case .homeFull?:
            logger.error("\(action): the home of \(name) is full: \(LogSafe.quote(outcome.message, limit: 400))", metadata: ["user": "\(name)"])
            return page(507, "home-full", title: "Your home folder is full", values: ["name": name.value])
        case .ldapUnavailable?, .temporaryFailure?:
            logger.error("\(action) could not finish: \(LogSafe.quote(outcome.message, limit: 400))", metadata: ["user": "\(name)"])
            return page(503, "busy", title: "Please try again shortly", extraHeaders: [("Retry-After", "30")])
        default:
            return incident(name, "\(action) exited \(outcome.status): \(outcome.message)")
        }
    }

    func incident(_ name: UserName, _ detail: String) -> FrontResponse {
        let id = Secret.hexToken(byteCount: 4)
        // The detail may hold the end of the user's own server log: quoted, it cannot forge log lines.
        logger.error("incident \(id): \(LogSafe.quote(detail, limit: 2000))", metadata: ["user": "\(name)"])
        incidents.record(.init(id: id, user: name.value, time: Date().timeIntervalSince1970, detail: String(detail.prefix(2000))))
        return page(500, "unavailable", title: "hydra is not available", values: ["incident": id])
    }

    /// `next` only within the user's own server; anything else is their lab.
    func safeNext(_ candidate: String?, for name: UserName) -> String {
        let base = name.serverPath
        guard let candidate, candidate.hasPrefix(base), !candidate.contains("//"), !candidate.contains("\\"), !candidate.contains("%"),
              !candidate.split(separator: "/").contains(".."),
              candidate.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return base + "lab" }
        return candidate
    }

    /// The page that logs the user in: an `_xsrf` cookie and a form that posts the token, with
    /// the same `_xsrf`, to the user's own server; submitted by a script allowed by nonce.
    func autoLogin(_ name: UserName, token: String, serverTag: String?, next: String, https: Bool) -> FrontResponse {
        let xsrf = Secret.hexToken(byteCount: 16)
        let nonce = Secret.hexToken(byteCount: 16)
        let action = name.serverPath + "login?next=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let html = pages.render("autologin", title: "Opening your notebooks", values: [
            "action": action, "token": token, "xsrf": xsrf, "nonce": nonce])
        let xsrfCookie = "_xsrf=\(xsrf); Path=\(name.serverPath); SameSite=Strict" + (https ? "; Secure" : "")
        var response = FrontResponse.html(200, html, extraHeaders: (serverTag.map { [("Set-Cookie", cookie(Self.serverCookieName, $0, https: https))] } ?? [])
                     + recentCookie(https: https) + [
            ("Set-Cookie", xsrfCookie),
            ("Content-Security-Policy", "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            ("X-Frame-Options", "DENY"),
        ])
        response.outcome = "autologin"
        return response
    }

    /// The page for a start the machine has no memory for (below `server.start_min_available_memory`),
    /// or nil when there is room. Every server already running keeps running.
    func noRoomPage(_ name: UserName) -> FrontResponse? {
        guard let minimum = config.server.startMinAvailableBytes, let available = MemoryInfo.availableBytes(),
              available < minimum else { return nil }
        logger.warning("start refused: \(available >> 20) MiB of memory available, server.start_min_available_memory is \(minimum >> 20) MiB",
                       metadata: ["user": "\(name)"])
        return page(503, "no-room", title: "No room for another notebook server right now", values: ["name": name.value],
                    extraHeaders: [("Retry-After", "60")])
    }

    func startingPage(_ name: UserName, reason: String, refreshSeconds: Int = 2, outcome: String? = nil) -> FrontResponse {
        var response = page(200, "starting", title: "Starting your notebook server", values: ["reason": reason],
                            extraHeaders: [("Refresh", "\(refreshSeconds)")])
        response.outcome = outcome ?? response.outcome
        return response
    }

    /// A queued job in a person's words, with Slurm's own reason and estimate for those who know them.
    static func queuedReason(_ job: SlurmClient.Job) -> String {
        let why = switch job.reason {
        case "Resources": "all of the cluster's nodes are busy"
        case "Priority": "jobs with a higher priority are ahead of it"
        case "None": "the scheduler has not looked at it yet"
        default: "Slurm says: \(job.reason)"
        }
        let estimate = job.startTime.first?.isNumber == true ? " Slurm expects it to start at \(job.startTime.replacingOccurrences(of: "T", with: " "))." : ""
        return "Your notebook server waits for a place on the cluster: its job \(job.id) is \(job.state.lowercased()) (\(why); reason: \(job.reason)).\(estimate)"
    }

    func health() -> FrontResponse {
        let base = config.server.runtimeDir
        let running = ServerCensus(config: config, accounts: accounts).socketOwners().count
        // hydra-gate runs as the web server's account too: its socket is the front's own.
        let gate = (try? DirectoryHandle.open("\(base)/\(RuntimeDirectory.gateDirectoryName)")).map {
            ServerSocket.isListening(in: $0, name: RuntimeDirectory.gateSocketName, ownerUID: ProcessControl.effectiveUserID)
        } ?? false
        return .json(200, #"{"status":"ok","service":"hydra-cgi","server_sockets":\#(running),"gate":\#(gate)}"# + "\n")
    }

    func page(_ status: Int, _ template: String, title: String, values: [String: Any] = [:], extraHeaders: [(String, String)] = []) -> FrontResponse {
        var response = FrontResponse.html(status, pages.render(template, title: title, values: values),
                                          extraHeaders: [("Content-Security-Policy", Pages.contentSecurityPolicy), ("X-Frame-Options", "DENY")] + extraHeaders)
        response.outcome = template
        return response
    }
}

/// The user's running server as the front sees it without privilege: its socket accepts
/// connections, and ipynb-launch published its token in the runtime directory for the web
/// server's group.
struct RunningServer {
    let directory: DirectoryHandle
    /// The process listening on the socket (SO_PEERCRED of the check's connection); nil for a
    /// Slurm job's server.
    let pid: Int32?
    /// Names this server instance without revealing anything: the published token file's inode
    /// and time (every server start writes a new file).
    let tag: String

    init?(_ name: UserName, uid: UInt32, config: HydraConfig) {
        let path = RuntimeDirectory(base: config.server.runtimeDir).path(for: name)
        guard let directory = try? DirectoryHandle.open(path), let pid = ServerSocket.listenerPID(in: directory, ownerUID: uid),
              let info = try? directory.entryStatus(RuntimeDirectory.Entry.loginToken), let tag = Self.tag(of: info) else { return nil }
        self.directory = directory
        self.pid = pid
        self.tag = tag
    }

    /// The server of the person's Slurm job, when the front wrote its endpoint and the gate
    /// would connect to it now (its last look at the cluster): no Slurm call.
    init?(jobOf name: UserName, config: HydraConfig, gate: GateLink) {
        guard config.clusterSlurm != nil, JobEndpoint.read(for: name, config: config) != nil,
              let directory = try? DirectoryHandle.open(RuntimeDirectory(base: config.server.runtimeDir).path(for: name)),
              let info = try? directory.entryStatus(RuntimeDirectory.Entry.loginToken), let tag = Self.tag(of: info),
              gate.servesJob(of: name) else { return nil }
        self.directory = directory
        self.pid = nil
        self.tag = tag
    }

    /// The tag of the token file in a runtime directory, if there is one.
    static func tag(in path: String) -> String? {
        (try? DirectoryHandle.open(path).entryStatus(RuntimeDirectory.Entry.loginToken)).flatMap { Self.tag(of: $0) }
    }

    private static func tag(of info: FileStatus) -> String? {
        guard info.kind == .regular else { return nil }
        return "\(info.inode).\(info.modifiedNanoseconds / 1_000_000_000).\(info.modifiedNanoseconds % 1_000_000_000)"
    }

    func token() -> String? {
        guard case .file(let bytes)? = try? directory.readEntry(RuntimeDirectory.Entry.loginToken, maxBytes: 256) else { return nil }
        let token = String(decoding: bytes, as: UTF8.self)
        return Secret.isLowercaseHex(bytes, count: 32, orMore: true) ? token : nil
    }
}
