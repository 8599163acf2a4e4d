import HydraSite
import HydraSystem
import FoundationEssentials

/// The Jupyter Server configuration hydra owns, two files per home: jupyter_config.py, the same
/// for every site (this folder's jupyter_config.py, embedded at build time by the EmbedPython
/// plugin, so that a Slurm node without hydra gets it from the shared home), and
/// jupyter_site.json beside it, the site's values from hydra.toml, which the Python reads once
/// at start. The per-user values (name, socket, token) come from the environment.
/// Verified against Jupyter Server 2.21 behind Apache (docs/research/jupyter-behind-apache.md);
/// Tests/Python/test_jupyter_config.py loads it with traitlets.
package struct JupyterSettings: Sendable {
    package let config: HydraConfig

    package init(config: HydraConfig) {
        self.config = config
    }

    /// The Python text, byte for byte this folder's jupyter_config.py.
    package static let fileContents = jupyterConfigPy
    /// Beside it, the name the Python reads. Not jupyter_config.json: beside the file given as
    /// --config, Jupyter reads that name too, as configuration of its own.
    package static let valuesFileName = "jupyter_site.json"

    /// What hydra.toml decides for the server; CodingKeys are the JSON keys the Python reads.
    package struct Values: Codable, Equatable, Sendable {
        /// The site's host name, which Jupyter must accept in Host and Origin (Apache preserves it).
        package var host: String
        /// The login cookie is Secure on an https site.
        package var https: Bool
        package var idleTimeoutSeconds: Int
        /// 0: kernels are never culled.
        package var kernelIdleTimeoutSeconds: Int
        /// How often Jupyter looks for idle kernels.
        package var kernelCullIntervalSeconds: Int
        /// The IPython extension that explains the site's limits (KernelLimitHelp).
        package var kernelExtension: String
        /// The server caps its own log at this size while it runs (ServerLog keeps the one before).
        package var logMaxBytes: Int

        enum CodingKeys: String, CodingKey {
            case host, https
            case idleTimeoutSeconds = "idle_timeout_seconds"
            case kernelIdleTimeoutSeconds = "kernel_idle_timeout_seconds"
            case kernelCullIntervalSeconds = "kernel_cull_interval_seconds"
            case kernelExtension = "kernel_extension"
            case logMaxBytes = "log_max_bytes"
        }
    }

    package var values: Values {
        let (url, kernelIdle) = (config.site.publicURL, config.server.kernelIdleTimeoutSeconds)
        return Values(host: URL(string: url)?.host ?? "localhost", https: url.lowercased().hasPrefix("https:"),
                      idleTimeoutSeconds: config.server.idleTimeoutSeconds, kernelIdleTimeoutSeconds: kernelIdle,
                      // Idle kernels go within the timeout, checked at most every 5 minutes.
                      kernelCullIntervalSeconds: max(1, min(300, kernelIdle == 0 ? 300 : kernelIdle)),
                      kernelExtension: KernelLimitHelp.moduleName, logMaxBytes: config.server.logMaxBytes)
    }

    /// The JSON file's bytes: the same for the same values (sorted keys), so that a home's copy
    /// is rewritten only when hydra.toml changed.
    package var valuesFileContents: [UInt8] {
        get throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            return Array(try encoder.encode(values)) + [UInt8(ascii: "\n")]
        }
    }
}
