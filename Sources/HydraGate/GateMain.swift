import Foundation
import HydraKit
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// hydra-gate's body: load the configuration, prepare the process, serve.
public enum GateMain {
    public static func run(configPath: String?, socket: String?, threads: Int, logger: Logger) -> ExitStatus {
        let config: HydraConfig
        let gate: Gate
        do {
            let path = try HydraConfig.path(option: configPath, environment: ProcessInfo.processInfo.environment)
            config = try HydraConfig.load(path: path)
            gate = try Gate(config: config, logger: logger)
        } catch {
            logger.critical("cannot start: \(error.description)")
            return error.exitStatus
        }
        // The socket: the web server's account and group only (Apache connects as its user).
        umask(0o007)
        raiseDescriptorLimit(logger: logger)
        do {
            try gate.run(socketPath: socket ?? RuntimeDirectory(config: config).gateSocketPath, threads: threads)
            return .done
        } catch {
            logger.critical("cannot serve on \(socket ?? RuntimeDirectory(config: config).gateSocketPath): \(error)")
            return .systemError
        }
    }

    /// Each open websocket takes two descriptors (Apache's and the server's): the soft limit
    /// (often 1024) would end the site near 500 open notebooks; the hard limit is the real one.
    static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 1 << 20)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("could not raise the descriptor limit: \(String(cString: strerror(errno)))")
        }
    }
}
