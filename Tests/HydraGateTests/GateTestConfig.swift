import HydraSite
import Foundation

/// The configuration of a gate run inside the tests: the runtime_dir is `base`, and the web
/// server's group is the test process's own (the gate checks sockets against it). `extra` is
/// TOML appended at the end (a [gate] table, [[courses]]).
func gateTestConfig(base: String, extra: String = "") throws -> HydraConfig {
    let groupName = String(cString: getgrgid(getgid()).pointee.gr_name)
    return try HydraConfig.parse("""
        [site]
        public_url = "http://localhost"
        web_server_group = "\(groupName)"
        [server]
        runtime_dir = "\(base)"
        runtime_dir_size = ""
        \(extra)
        """, path: "hydra.toml")
}
