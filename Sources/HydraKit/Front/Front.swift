import Foundation
import Logging

/// The FastCGI front's routing: one request in, one response out. Runs as the web server's
/// user; every name goes through the shared validation before anything else sees it.
public struct Front: Sendable {
    public let config: HydraConfig
    public let pages = Pages()
    public let logger: Logger

    public init(config: HydraConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func handle(_ request: FrontRequest) -> FrontResponse {
        switch request.path {
        case "/hydra/health":
            return .json(200, #"{"status":"ok","service":"hydra-cgi"}"# + "\n")
        case "/", "/hydra/whoami":
            return whoami(request)
        default:
            return page(404, "not-found", title: "Not found")
        }
    }

    /// Who Apache says the visitor is, after realm stripping and validation.
    func whoami(_ request: FrontRequest) -> FrontResponse {
        guard let remoteUser = request.remoteUser else {
            let incident = Secret.hexToken(byteCount: 4)
            logger.error("no REMOTE_USER: the site's authentication is not configured", metadata: ["incident": "\(incident)", "path": "\(LogSafe.quote(request.path))"])
            return page(500, "no-auth", title: "Sign-in is not configured", values: ["incident": incident])
        }
        do {
            let name = try RemoteUser.userName(from: remoteUser, realm: config.site.kerberosRealm, extraPattern: config.accounts.namePattern)
            var values: [String: Any] = ["name": name.value, "remoteUser": remoteUser]
            if request.path == "/" {
                values["note"] = "This hydra build does not start notebook servers yet (see the project's open issues)."
            }
            return page(200, "whoami", title: "hydra: \(name.value)", values: values)
        } catch {
            logger.warning("refused REMOTE_USER: \(error.description)")
            return page(400, "bad-name", title: "Invalid account name", values: ["remoteUser": remoteUser, "reason": error.reason])
        }
    }

    func page(_ status: Int, _ template: String, title: String, values: [String: Any] = [:]) -> FrontResponse {
        .html(status, pages.render(template, title: title, values: values),
              extraHeaders: [("Content-Security-Policy", Pages.contentSecurityPolicy), ("X-Frame-Options", "DENY")])
    }
}
