import HydraSystem
/// `ipynb-launch check`: may this account use hydra, and is its runtime directory ready?
package struct LaunchCheck: Sendable, Encodable {
    package let user: String
    package let uid: UInt32
    package let runtimeDir: String
    package let ready: Bool

    package var summary: String {
        ready ? "\(user) (UID \(uid)) may use hydra; \(runtimeDir) is ready"
              : "\(user) (UID \(uid)) may use hydra, but \(runtimeDir) is not ready (run addldapuser \(user) as root)"
    }

    enum CodingKeys: String, CodingKey { case user, uid, ready, runtimeDir = "runtime_dir" }

    package init(config: HydraConfig, identity: LaunchIdentity) {
        user = identity.name.value
        uid = identity.account.uid
        runtimeDir = RuntimeDirectory(base: config.server.runtimeDir).path(for: identity.name)
        ready = RuntimeDirectory.isReady(for: identity.name, uid: identity.account.uid, config: config)
    }
}
