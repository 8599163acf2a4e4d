import HydraSite
import HydraAccounts
import HydraCourses
import HydraPages
import HydraSystem
import HydraFastCGI
import FoundationEssentials
import Logging
import Synchronization

/// hydra-cgi's body: load the configuration, then answer requests as FastCGI or CGI.
package enum FrontMain {
    /// `hydra-cgi --refresh-mirrors`: every course mirror fetched if stale.
    package static func refreshMirrors(configPath: String?, logger: Logger) -> ExitStatus {
        do {
            let path = try HydraConfig.path(option: configPath, environment: ProcessInfo.processInfo.environment)
            let config = try HydraConfig.load(path: path)
            var worst = ExitStatus.done
            for course in config.courses {
                let mirror = Mirror(config: config, course: course)
                do {
                    let outcome = try mirror.refreshIfStale()
                    logger.info("mirror \(mirror.path) of \(course.repo): \(outcome.rawValue)")
                } catch {
                    logger.error("mirror \(mirror.path) of \(course.repo): \(error)")
                    worst = .temporaryFailure
                }
            }
            return worst
        } catch {
            logger.critical("cannot refresh mirrors: \(error.description)")
            return error.exitStatus
        }
    }

    package static func run(socket: String?, workers: Int, configPath: String?, logger: Logger) -> ExitStatus {
        let path: String
        do {
            path = try HydraConfig.path(option: configPath, environment: ProcessInfo.processInfo.environment)
        } catch {
            logger.critical("cannot start: \(error.description)")
            return error.exitStatus
        }
        if let socket {
            return serve(workers: workers, socket: socket, handler: ReloadingFront(path: path, logger: logger).answer, logger: logger)
        }
        let config: HydraConfig
        do {
            config = try HydraConfig.load(path: path)
        } catch {
            logger.critical("cannot start: \(error.description)")
            if !FastCGI.isFastCGI { StandardStreams.writeOutput(FrontResponse.unavailable.cgiBytes) }
            return error.exitStatus
        }
        let front = Front(config: config, logger: logger)
        front.logStart()
        guard FastCGI.isFastCGI else {
            FastCGI.serveCGI(front.answer)
            return .done
        }
        return serve(workers: 1, socket: nil, handler: front.answer, logger: logger)
    }

    private static func serve(workers: Int, socket: String?, handler: @escaping FastCGI.Handler, logger: Logger) -> ExitStatus {
        do {
            try FastCGI.serve(workers: workers, socketPath: socket, handler: handler)
            return .done
        } catch {
            logger.critical("cannot serve: \(error.description)")
            return error.exitStatus
        }
    }
}

/// The front as one long-lived daemon (`hydra-cgi --socket`, hydra-cgi.service, mod_proxy_fcgi):
/// it reads hydra.toml again at the first request after the file changed (one stat a request),
/// so an admin's edit takes effect at once, with no restart to remember. While the file does not
/// load, every request is answered "hydra is not available" and the log says why, once per
/// change of the file; the daemon keeps running, so fixing the file is enough.
package final class ReloadingFront: Sendable {
    let path: String
    let logger: Logger
    private struct Loaded {
        /// The file as it was when last read (nil: missing); `front` is nil when it did not load.
        var file: FileStatus?
        var front: Front?
    }
    /// nil until the file is first read.
    private let loaded = Mutex<Loaded?>(nil)

    package init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        _ = current()
    }

    /// The front for the configuration file as it is now, or nil while it does not load.
    package func current() -> Front? {
        let file = FileStatus.following(path)
        return loaded.withLock { (loaded: inout Loaded?) -> Front? in
            if let loaded, loaded.file == file { return loaded.front }
            let reloading = loaded != nil
            var front: Front?
            do throws(ConfigError) {
                front = Front(config: try HydraConfig.load(path: path), logger: logger)
                if reloading { logger.notice("\(path) changed: read it again") }
                front?.logStart()
            } catch {
                let what = reloading ? "\(path) changed, and it" : "the configuration"
                logger.critical("\(what) does not load, so every request is answered 'hydra is not available' until it is fixed: \(error.description)")
            }
            loaded = Loaded(file: file, front: front)
            return front
        }
    }

    @Sendable package func answer(_ request: FastCGI.Request) -> FastCGI.Answer {
        guard let front = current() else { return FastCGI.Answer(bytes: FrontResponse.unavailable.cgiBytes) }
        return front.answer(request)
    }
}

extension Front {
    /// `handle` in the FastCGI loop's terms.
    @Sendable package func answer(_ request: FastCGI.Request) -> FastCGI.Answer {
        let response = handle(FrontRequest(parameters: request.parameters, body: request.body))
        return FastCGI.Answer(bytes: response.cgiBytes, afterwards: response.afterwards)
    }

    /// The first line a front writes: how the people's servers run.
    func logStart() {
        let overrides = config.limits.perUser.isEmpty ? "" : " (per-user limits for \(config.limits.perUser.count) accounts)"
        logger.info("notebook servers run as \(Supervision(config: config).summary)\(overrides)")
    }
}

extension FrontResponse {
    /// "hydra is not available": the configuration does not load (the log says why).
    static var unavailable: FrontResponse {
        .html(500, Pages().render("unavailable", title: "hydra is not available", values: ["incident": "configuration"]))
    }
}
