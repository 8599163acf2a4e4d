import HydraSite
import HydraAccounts
import HydraSystem
import FoundationEssentials

/// What a state-changing form of the front (the admin's Stop) must show before it acts: it was
/// posted from this site's own pages, and it carries a token the front minted for the person
/// signed in. A page served elsewhere (another site, or another port of this very host, whose
/// cookies the browser shares with this one) can make a browser POST here and can set any
/// cookie it likes, but it cannot read a token nor mint one: the key never leaves the front.
package struct FormGuard: Sendable {
    /// The form a token is for: a token for one never passes for another.
    package enum Purpose: String, Sendable {
        case adminStop = "admin-stop"
        case profile
    }

    /// The key: 32 random bytes in the front's own folder (root's, the web server's group;
    /// mode 0600, so only the web server's account reads it). /run is new at each boot, so the
    /// key is too; removing the file rotates it at once, and every form already shown expires.
    package static let keyFileName = "form-key"
    /// How long a page's forms stay usable.
    package static let lifetimeSeconds = 12 * 3600

    package let directory: String
    /// `scheme://host[:port]` of site.public_url, as a browser writes it in `Origin`.
    package let siteOrigin: String

    package init(directory: String, publicURL: String) {
        self.directory = directory
        self.siteOrigin = Self.origin(of: publicURL) ?? publicURL
    }

    package init(config: HydraConfig) {
        self.init(directory: "\(config.server.runtimeDir)/\(RuntimeDirectory.frontDirectoryName)", publicURL: config.site.publicURL)
    }

    /// "ISSUED.HMAC": the time it was made, and the HMAC of the purpose, the person and that time.
    package func mint(_ purpose: Purpose, for person: UserName, now: Date = Date()) throws(SystemError) -> String {
        let issued = Int(now.timeIntervalSince1970)
        return "\(issued).\(try signature(purpose, person, issued))"
    }

    /// Why a POST may not act, or nil when it may.
    package func refusal(of request: FrontRequest, _ purpose: Purpose, for person: UserName, now: Date = Date()) -> String? {
        if let origin = request.parameters["HTTP_ORIGIN"] {
            guard Self.origin(of: origin) == siteOrigin else {
                return "it was posted from \(LogSafe.quote(origin, limit: 200)), not from this site (\(siteOrigin))"
            }
        } else if let referer = request.parameters["HTTP_REFERER"] {
            guard Self.origin(of: referer) == siteOrigin else {
                return "it was posted from a page of \(LogSafe.quote(referer, limit: 200)), not of this site (\(siteOrigin))"
            }
        } else {
            return "the browser said neither where it was posted from (no Origin, no Referer)"
        }
        guard let token = request.formValue("_xsrf") else { return "it carries no form token" }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let issued = Int(parts[0]), parts[1].count == 64 else { return "its form token is malformed" }
        let age = Int(now.timeIntervalSince1970) - issued
        guard age >= -60, age <= Self.lifetimeSeconds else { return "its form token has expired (the page is older than \(Self.lifetimeSeconds / 3600) h)" }
        guard let expected = try? signature(purpose, person, issued), Secret.matches(String(parts[1]), expected) else {
            return "its form token was not made for \(person) (or the front's key has changed since)"
        }
        return nil
    }

    private func signature(_ purpose: Purpose, _ person: UserName, _ issued: Int) throws(SystemError) -> String {
        MessageAuthentication.sha256(key: try key(), message: Array("\(purpose.rawValue)\n\(person.value)\n\(issued)".utf8))
    }

    /// The key, made by whichever front process needs it first.
    private func key() throws(SystemError) -> [UInt8] {
        let folder = try DirectoryHandle.open(directory)
        for _ in 0..<2 {
            switch try folder.readEntry(Self.keyFileName, maxBytes: 256) {
            case .file(let bytes) where Secret.isLowercaseHex(bytes, count: 64):
                return bytes
            case .missing:
                _ = try folder.createOnce(Self.keyFileName, Array(Secret.hexToken(byteCount: 32).utf8), mode: 0o600)
            default:
                throw SystemError("reading the form key (not 64 hex digits; remove it to make a new one)", "\(directory)/\(Self.keyFileName)",
                                  errno: .invalidArgument)
            }
        }
        throw SystemError("reading the form key", "\(directory)/\(Self.keyFileName)", errno: .invalidArgument)
    }

    /// `scheme://host[:port]` of a URL or an Origin, lowercased, without the scheme's default
    /// port; nil for anything else ("null", a relative path).
    package static func origin(of url: String) -> String? {
        let lowered = url.lowercased()
        guard let schemeEnd = lowered.range(of: "://") else { return nil }
        let scheme = String(lowered[..<schemeEnd.lowerBound])
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = lowered[schemeEnd.upperBound...]
        var authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        let defaultPort = scheme == "https" ? ":443" : ":80"
        if authority.hasSuffix(defaultPort) { authority.removeLast(defaultPort.count) }
        return "\(scheme)://\(authority)"
    }
}
