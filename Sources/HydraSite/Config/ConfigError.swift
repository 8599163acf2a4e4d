import HydraSystem
/// What can be wrong with /etc/hydra/hydra.toml. Every message names the file, and where it can,
/// the line and the key, so an admin can fix it without guessing.
package enum ConfigError: HydraError, Equatable {
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case notTrusted(path: String, reason: String)
    case syntax(path: String, line: Int, column: Int, message: String)
    case unknownKey(path: String, line: Int, key: String)
    case wrongType(path: String, line: Int, key: String, expected: String, found: String)
    case invalidValue(path: String, line: Int, key: String, reason: String)
    case missingKey(path: String, key: String)
    case optionRefused(reason: String)

    package var exitStatus: ExitStatus { .configurationError }

    package var description: String {
        switch self {
        case .missing(let path):
            "\(path): the configuration file does not exist (install one from etc/hydra.toml in hydra's sources)"
        case .unreadable(let path, let reason):
            "\(path): cannot read the configuration file: \(reason)"
        case .notTrusted(let path, let reason):
            "\(path): refusing an untrusted configuration file: \(reason)"
        case .syntax(let path, let line, let column, let message):
            "\(path):\(line):\(column): not valid TOML: \(message)"
        case .unknownKey(let path, let line, let key):
            "\(path):\(line): unknown key '\(key)' (misspelt? every key is documented in etc/hydra.toml)"
        case .wrongType(let path, let line, let key, let expected, let found):
            "\(path):\(line): '\(key)' must be \(expected), not \(found)"
        case .invalidValue(let path, let line, let key, let reason):
            "\(path):\(line): '\(key)': \(reason)"
        case .missingKey(let path, let key):
            "\(path): the required key '\(key)' is missing"
        case .optionRefused(let reason):
            "refused: \(reason)"
        }
    }
}
