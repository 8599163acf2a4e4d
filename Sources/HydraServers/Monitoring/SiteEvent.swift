import FoundationEssentials

/// What the front tells hydra-gate happened, for the site's metrics. The gate keeps the counts
/// (and serves /hydra/metrics' other half): each event is one line on the gate's control socket
/// (`GateControl`), sent after the visit's answer.
package enum SiteEvent: Codable, Sendable, Equatable {
    /// A visit to `/` answered with this outcome (the page it got: `lab`, `autologin`,
    /// `starting`, `forbidden`, `unavailable`...).
    case visit(outcome: String)
    /// `ipynb-launch start` finished: `started`, `reused` or `waiting` (from its answer), or
    /// `failed`; `seconds` is how long the helper took; `profile` the server's (nil: failed).
    case start(outcome: String, seconds: Double, profile: String? = nil)
    /// A visit found every start slot (server.max_concurrent_starts) taken and was sent the
    /// self-reloading page.
    case startDeferred
    /// A helper's exit status (`addldapuser`, `ipynb-launch start`, `ipynb-launch stop`).
    case helper(name: String, exitStatus: Int32)
    /// One course folder's sync in a start: `ok` or not.
    case courseSync(folder: String, ok: Bool)
    /// addldapuser created an account.
    case accountCreated
    /// addldapuser could not reach the directory (exit status 69).
    case ldapUnavailable
}

/// The gate's control socket, `<runtime_dir>/.gate/control.sock` (the web server's own folder:
/// only its processes reach it). A client sends one line and reads until the gate closes:
/// `event <JSON SiteEvent>` (no answer), `metrics` (Prometheus text), `people` (JSON
/// `[name: PersonActivity]`).
package enum GateControl {
    package static let socketName = "control.sock"
    package static let metricsCommand = "metrics"
    package static let peopleCommand = "people"
    package static let eventPrefix = "event "
    /// "serving NAME": whether the gate would connect to NAME's Slurm job now (its endpoint,
    /// checked against its last look at the cluster); "yes" or "no".
    package static let servingPrefix = "serving "
    /// A longer line is not the front's.
    package static let maximumLineBytes = 16_384
}

/// What the gate saw of one person's traffic (as JupyterHub's proxy reports last activity).
package struct PersonActivity: Codable, Sendable, Equatable {
    /// Seconds since 1970 of the last request or websocket the gate admitted or ended.
    package var lastActivity: Double
    package var openWebsockets: Int
    package var requestsUnderWay: Int

    package init(lastActivity: Double, openWebsockets: Int = 0, requestsUnderWay: Int = 0) {
        (self.lastActivity, self.openWebsockets, self.requestsUnderWay) = (lastActivity, openWebsockets, requestsUnderWay)
    }
}
