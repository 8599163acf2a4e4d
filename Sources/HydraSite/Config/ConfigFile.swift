import HydraSystem

extension HydraConfig {
    /// Loads the configuration from a root-owned file (see `TrustedFile`).
    package static func load(path: String = defaultPath) throws(ConfigError) -> HydraConfig {
        let bytes: [UInt8]
        do {
            bytes = try TrustedFile.read(path)
        } catch {
            switch error {
            case .missing: throw .missing(path: path)
            case .unreadable(let reason): throw .unreadable(path: path, reason: reason)
            case .untrusted(let reason): throw .notTrusted(path: path, reason: reason)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .syntax(path: path, line: 1, column: 1, message: "the file is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Which file to read. A helper started through sudo (or set-uid) always reads the default:
    /// letting its caller name another file would let the web server choose the LDAP server,
    /// the UID range and the group.
    package static func path(option: String?, environment: [String: String]) throws(ConfigError) -> String {
        guard let option else { return defaultPath }
        if environment["SUDO_USER"] != nil || environment["SUDO_UID"] != nil || ProcessControl.realUserID != ProcessControl.effectiveUserID {
            throw .optionRefused(reason: "--config cannot be used through sudo; the configuration is always \(defaultPath)")
        }
        return option
    }
}
