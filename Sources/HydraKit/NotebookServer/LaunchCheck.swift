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
        let runtime = RuntimeDirectory(base: config.server.runtimeDir)
        let webGID = UserDatabase.group(named: config.site.webServerGroup)?.gid ?? UInt32.max
        user = identity.name.value
        uid = identity.account.uid
        runtimeDir = runtime.path(for: identity.name)
        ready = runtime.isReady(for: identity.name, uid: identity.account.uid, webGID: webGID)
    }
}
