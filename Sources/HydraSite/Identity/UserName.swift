import HydraSystem
/// A user name that passed hydra's one validation rule. The front, addldapuser and
/// ipynb-launch all validate through here, so they can never disagree.
///
/// The rule: Debian's NAME_REGEX `^[a-z][-a-z0-9_]*$`, 1...32 bytes, plain ASCII (so no
/// Unicode look-alikes, no shell or LDAP filter metacharacters, no leading dash), plus an
/// optional stricter pattern from the configuration.
package struct UserName: Sendable, Hashable, CustomStringConvertible {
    package let value: String
    package var description: String { value }

    /// Where the person's server is on the site (Jupyter's base URL; Apache routes it to them).
    package var serverPath: String { "/user/\(value)/" }

    package static let maximumLength = 32

    package init(_ candidate: String, extraPattern: String = "") throws(InvalidName) {
        guard Self.isWellFormed(candidate) else { throw InvalidName(candidate: candidate, reason: Self.reason(candidate)) }
        if !extraPattern.isEmpty {
            guard let regex = try? Regex(extraPattern), (try? regex.wholeMatch(in: candidate)) != nil else {
                throw InvalidName(candidate: candidate, reason: "does not match the site's name_pattern")
            }
        }
        value = candidate
    }

    /// The built-in rule alone (also used for group names in the configuration).
    package static func isWellFormed(_ candidate: String) -> Bool {
        let bytes = Array(candidate.utf8)
        guard let first = bytes.first, bytes.count <= maximumLength, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
            return false
        }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    private static func reason(_ candidate: String) -> String {
        if candidate.isEmpty { return "is empty" }
        if candidate.utf8.count > maximumLength { return "is longer than \(maximumLength) bytes" }
        if candidate.utf8.contains(where: { $0 >= 0x80 }) { return "contains non-ASCII characters" }
        if let first = candidate.unicodeScalars.first, !("a"..."z").contains(first) {
            return "must start with a lowercase letter a-z"
        }
        return "may contain only a-z, 0-9, '-' and '_'"
    }
}

/// A name that failed validation. The message shows the name escaped, so a hostile name
/// cannot forge log lines.
package struct InvalidName: HydraError, Equatable {
    package let candidate: String
    package let reason: String
    package var exitStatus: ExitStatus { .invalidName }
    package var description: String { "invalid user name \(LogSafe.quote(candidate)): \(reason)" }
}

/// The name Apache authenticated, as REMOTE_USER carries it.
package enum RemoteUser {
    /// Strips "@REALM" only for the configured realm, then validates. "alice@OTHER.ORG" stays
    /// as it is and so fails validation: another realm's alice is not this site's alice.
    package static func userName(from remoteUser: String, realm: String, extraPattern: String) throws(InvalidName) -> UserName {
        var name = remoteUser
        if !realm.isEmpty, name.hasSuffix("@" + realm) {
            name.removeLast(realm.count + 1)
        }
        return try UserName(name, extraPattern: extraPattern)
    }
}

/// Renders untrusted text for a log line: printable ASCII as it is, everything else escaped.
package enum LogSafe {
    package static func quote(_ text: String, limit: Int = 80) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(limit) {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case " "..."~": out.unicodeScalars.append(scalar)
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        if text.unicodeScalars.count > limit { out += "..." }
        return out + "\""
    }
}
