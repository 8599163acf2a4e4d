import HydraSite
import HydraAccounts
import HydraCourses
import HydraPages
import HydraSystem
import HydraFastCGI
import FoundationEssentials
import Logging

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
        let config: HydraConfig
        do {
            let path = try HydraConfig.path(option: configPath, environment: ProcessInfo.processInfo.environment)
            config = try HydraConfig.load(path: path)
        } catch {
            logger.critical("cannot start: \(error.description)")
            if socket == nil && !FastCGI.isFastCGI {
                let response = FrontResponse.html(500, Pages().render("unavailable", title: "hydra is not available", values: ["incident": "configuration"]))
                StandardStreams.writeOutput(response.cgiBytes)
            }
            return error.exitStatus
        }
        let front = Front(config: config, logger: logger)
        let overrides = config.limits.perUser.isEmpty ? "" : " (per-user limits for \(config.limits.perUser.count) accounts)"
        logger.info("notebook servers run as \(Supervision(config: config).summary)\(overrides)")
        if socket == nil && !FastCGI.isFastCGI {
            FastCGI.serveCGI(front.answer)
            return .done
        }
        do {
            try FastCGI.serve(workers: workers, socketPath: socket, handler: front.answer)
            return .done
        } catch {
            logger.critical("cannot serve: \(error.description)")
            return error.exitStatus
        }
    }
}

extension Front {
    /// `handle` in the FastCGI loop's terms.
    @Sendable package func answer(_ request: FastCGI.Request) -> FastCGI.Answer {
        let response = handle(FrontRequest(parameters: request.parameters, body: request.body))
        return FastCGI.Answer(bytes: response.cgiBytes, afterwards: response.afterwards)
    }
}
