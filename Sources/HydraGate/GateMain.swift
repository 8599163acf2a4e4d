import HydraSite
import HydraAccounts
import FoundationEssentials
import HydraPages
import HydraSystem
import Logging

/// hydra-gate's body: load the configuration, prepare the process, serve.
package enum GateMain {
    package static func run(configPath: String?, socket: String?, threads: Int, logger: Logger) -> ExitStatus {
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
        do {
            try ProcessControl.raiseDescriptorLimit()
        } catch {
            logger.warning("could not raise the descriptor limit: \(error.code)")
        }
        do {
            // The socket: the web server's account and group only (Apache connects as its user).
            try ProcessControl.withFileCreationMask(0o007) {
                try gate.run(socketPath: socket ?? RuntimeDirectory(config: config).gateSocketPath, threads: threads)
            }
            return .done
        } catch {
            logger.critical("cannot serve on \(socket ?? RuntimeDirectory(config: config).gateSocketPath): \(error)")
            return .systemError
        }
    }
}
