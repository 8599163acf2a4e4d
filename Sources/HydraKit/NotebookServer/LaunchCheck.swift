/// `ipynb-launch check`: may this account use hydra, and is its runtime directory ready?
public struct LaunchCheck: Sendable, Encodable {
    public let user: String
    public let uid: UInt32
    public let runtimeDir: String
    public let ready: Bool

    public var summary: String {
        ready ? "\(user) (UID \(uid)) may use hydra; \(runtimeDir) is ready"
              : "\(user) (UID \(uid)) may use hydra, but \(runtimeDir) is not ready (run addldapuser \(user) as root)"
    }

    enum CodingKeys: String, CodingKey { case user, uid, ready, runtimeDir = "runtime_dir" }

    public init(config: HydraConfig, identity: LaunchIdentity) {
        user = identity.name.value
        uid = identity.account.uid
        runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        ready = RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config)
    }
}
