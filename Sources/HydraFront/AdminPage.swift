import HydraSite
import HydraAccounts
import HydraCourses
import HydraServers
import HydraSystem
import HydraVersion
import FoundationEssentials

/// /hydra/admin (every running server, with a Stop button; the course mirrors; the recent
/// incidents) and /hydra/metrics, for the admins `[admin]` names. Plain HTML forms: no script.
extension Front {
    /// Signed in and an admin, or the page that says no (403).
    func withAdmin(_ request: FrontRequest, _ body: (UserName) -> FrontResponse) -> FrontResponse {
        withUser(request) { name, _ in
            guard isAdmin(name) else {
                logger.warning("\(request.path) refused: not in [admin]", metadata: ["user": "\(name)"])
                return page(403, "not-admin", title: "Administrators only", values: ["name": name.value])
            }
            return body(name)
        }
    }

    func isAdmin(_ name: UserName) -> Bool {
        if config.admin.users.contains(name.value) { return true }
        guard !config.admin.group.isEmpty, let account = accounts.user(named: name.value) else { return false }
        return accounts.groupNames(of: account).contains(config.admin.group)
    }

    func adminPage(_ request: FrontRequest, admin: UserName) -> FrontResponse {
        let xsrf: String
        do throws(SystemError) {
            xsrf = try forms.mint(.adminStop, for: admin)
        } catch {
            return incident(admin, "admin page: no form token: \(error)")
        }
        let now = Date()
        let activity = link.people()
        let census = ServerCensus(config: config, accounts: accounts)
        // Servers of local profiles have a socket here; those of Slurm profiles are jobs.
        var servers: [[String: Any]] = config.profiles.contains(where: { $0.backend == .local }) ? localRows(census, activity: activity, now: now) : []
        var slurmError: String?
        if let settings = config.clusterSlurm {
            let jobs: [[String: Any]]
            (jobs, slurmError) = jobRows(settings, census: census, activity: activity, now: now)
            servers += jobs
        }
        let runs = config.hasProfiles
            ? "Profiles: " + config.profiles.map { "\($0.name) (\(Self.summary(of: config.applying($0))))" }.joined(separator: "; ") + "."
            : "Servers run as \(Self.summary(of: config))."
        return adminResponse(request, admin: admin, xsrf: xsrf, servers: servers, runs: runs,
                             extra: ["slurmError": slurmError ?? false, "showProfiles": config.hasProfiles], activity: activity, now: now)
    }

    /// How servers of this configuration run, in words.
    static func summary(of config: HydraConfig) -> String {
        config.slurmJobs?.summary ?? Supervision(config: config).summary
    }

    /// Each server with a socket on this machine, with what its processes use now.
    func localRows(_ census: ServerCensus, activity: [String: PersonActivity]?, now: Date) -> [[String: Any]] {
        let supervision = Supervision(config: config)
        return census.servers().map { server -> [String: Any] in
            let seen = activity?[server.name].map { Date(timeIntervalSince1970: $0.lastActivity) }
            let runsAs = switch supervision.mode {
            case .systemd: "systemd unit " + ((try? UserName(server.name)).map { SystemdUnit.name(for: $0) } ?? "?")
            case .detached: "detached" + (server.pid.map { ", PID \($0)" } ?? "")
            }
            return [
                "name": server.name, "since": Self.describe(server.since, now: now),
                "memory": "\(server.residentBytes >> 20) MiB", "cpu": "\(Double(Int(server.cpuSeconds * 10)) / 10) s",
                "kernels": server.kernels, "lastActivity": activity == nil ? "(hydra-gate not answering)" : Self.describe(seen, now: now),
                "websockets": activity?[server.name]?.openWebsockets ?? 0, "runsAs": runsAs,
                // The counts of the server's own unit; a detached server has none of its own.
                "limits": supervision.mode == .systemd ? server.pid.flatMap { LimitEvents.read(serverPID: $0)?.summary } ?? "unknown"
                    : "(detached: the kernel names the limit)",
                "profile": server.profile ?? "?",
            ]
        }
    }

    /// Each hydra job of the cluster (named hydra-NAME by its owner NAME), running or queued.
    /// Memory and CPU time are the node's to know: Slurm's accounting (sstat) where a site has it.
    func jobRows(_ settings: SlurmSettings, census: ServerCensus, activity: [String: PersonActivity]?, now: Date) -> ([[String: Any]], String?) {
        let jobs: [SlurmClient.Job]
        do throws(SlurmFailure) {
            jobs = try SlurmClient(settings: settings).queue()
        } catch {
            logger.error("admin page: \(error)")
            return ([], "Slurm did not answer: \(error.description)")
        }
        let rows = jobs.filter { $0.name == "hydra-\($0.user)" && $0.phase != .ending }.map { job -> [String: Any] in
            let seen = activity?[job.user].map { Date(timeIntervalSince1970: $0.lastActivity) }
            let running = job.phase == .running
            return [
                "name": job.user, "since": running ? job.startTime.replacingOccurrences(of: "T", with: " ") : "(queued)",
                "memory": "(on the node)", "cpu": "(on the node)", "kernels": "?",
                "lastActivity": activity == nil ? "(hydra-gate not answering)" : Self.describe(seen, now: now),
                "websockets": activity?[job.user]?.openWebsockets ?? 0,
                "runsAs": running ? "Slurm job \(job.id) on \(job.node)" : "Slurm job \(job.id), \(job.state.lowercased()) (\(job.reason))",
                "limits": "(Slurm's)",
                "profile": census.profile(of: job.user) ?? "?",
            ]
        }
        return (rows, nil)
    }

    func adminResponse(_ request: FrontRequest, admin: UserName, xsrf: String, servers: [[String: Any]], runs: String,
                       extra: [String: Any], activity: [String: PersonActivity]?, now: Date) -> FrontResponse {
        let mirrors = config.courses.map { course -> [String: Any] in
            let mirror = Mirror(config: config, course: course)
            return ["folder": course.folder, "repo": course.repo, "branch": course.branch,
                    "lastFetch": Self.describe(mirror.lastFetch, now: now), "lastError": mirror.lastError ?? ""]
        }
        let incidents = incidents.recent(20).map { incident -> [String: Any] in
            ["id": incident.id, "user": incident.user, "detail": incident.detail,
             "time": Self.describe(Date(timeIntervalSince1970: incident.time), now: now)]
        }
        let stopped = request.queryValue("stopped").flatMap { UserName.isWellFormed($0) ? $0 : nil }
        return page(200, "admin", title: "hydra: servers", values: [
            "admin": admin.value, "xsrf": xsrf, "servers": servers, "serverCount": servers.count,
            "supervision": runs, "mirrors": mirrors, "incidents": incidents,
            "stopped": stopped ?? false, "gateDown": activity == nil, "version": HydraBuild.version,
        ].merging(extra) { first, _ in first })
    }

    /// The Stop button: `ipynb-launch stop` as the person, then back to the list.
    func adminStop(_ request: FrontRequest, admin: UserName) -> FrontResponse {
        if let refusal = forms.refusal(of: request, .adminStop, for: admin) {
            // Someone's page may have tried to make an admin's browser stop a server: an incident
            // the admins see, as well as the log line.
            let target = LogSafe.quote(request.formValue("user") ?? "", limit: 64)
            let id = Secret.hexToken(byteCount: 4)
            logger.warning("incident \(id): a Stop of \(target) in the name of \(admin) was refused: \(refusal)", metadata: ["user": "\(admin)"])
            incidents.record(.init(id: id, user: admin.value, time: Date().timeIntervalSince1970,
                                   detail: "A Stop of \(target) was refused and nothing was stopped: \(refusal)."))
            return page(403, "stale-form", title: "This form has expired", values: ["page": "/hydra/admin"])
        }
        guard let target = request.formValue("user"), let name = try? UserName(target) else {
            return page(400, "not-found", title: "No such server")
        }
        do {
            try policy.checkName(name)
            let outcome = try helpers.stopServer(name)
            link.send(.helper(name: "ipynb-launch stop", exitStatus: outcome.status))
            if let failure = failurePage(for: outcome, name: name, action: "ipynb-launch stop (by \(admin))") { return failure }
            JobEndpoint.remove(for: name, config: config)
            logger.notice("\(admin) stopped the server of \(name) from the admin page", metadata: ["user": "\(name)"])
            return .redirect("/hydra/admin?stopped=\(name.value)", status: 303, outcome: "stopped")
        } catch let refusal as AccountRefusal {
            logger.warning("admin stop refused: \(refusal)", metadata: ["user": "\(name)"])
            return page(403, "forbidden", title: "Not available for this account", values: ["name": name.value])
        } catch {
            return incident(name, "ipynb-launch stop (by \(admin)): \(error)")
        }
    }

    /// Prometheus text from hydra-gate. Signed in: admins only. Not signed in: Apache let the
    /// request through without authentication, which apache/hydra.conf does only for the
    /// scrapers' addresses it lists (every other path of the site requires sign-in).
    func metricsPage(_ request: FrontRequest) -> FrontResponse {
        guard request.remoteUser == nil else { return withAdmin(request) { _ in metrics() } }
        return metrics()
    }

    private func metrics() -> FrontResponse {
        guard let text = link.metrics() else {
            logger.error("/hydra/metrics: hydra-gate does not answer on its control socket (\(link.directory)/\(GateControl.socketName))")
            return FrontResponse(status: 503, headers: [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "10")],
                                 body: Array("hydra-gate is not answering: see Apache's error log and `systemctl status hydra-gate`\n".utf8))
        }
        return FrontResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                             body: text)
    }

    /// "2026-12-01 04:20:07 UTC (3 min ago)", or "never".
    static func describe(_ date: Date?, now: Date) -> String {
        guard let date else { return "never" }
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        let ago = seconds < 120 ? "\(seconds) s" : seconds < 7200 ? "\(seconds / 60) min" : seconds < 172_800 ? "\(seconds / 3600) h" : "\(seconds / 86400) days"
        let stamp = date.ISO8601Format().replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: " UTC")
        return "\(stamp) (\(ago) ago)"
    }
}
