import HydraSite
import HydraSystem

/// A person as the directory describes them.
package struct DirectoryPerson: Sendable, Equatable {
    package let dn: String
    package let uidNumber: UInt32
    package let displayName: String
}

/// What the directory said about a name. Only `.noSuchEntry` permits a local UID.
package enum DirectoryAnswer: Sendable, Equatable {
    case found(DirectoryPerson)
    case noSuchEntry
    case notConfigured
}

package enum DirectoryError: HydraError, Equatable {
    /// Down, timed out, bind or StartTLS refused, base missing: no answer at all.
    case unavailable(String)
    /// An answer hydra cannot build an account from.
    case entryUnusable(String)

    package var exitStatus: ExitStatus {
        switch self {
        case .unavailable: .ldapUnavailable
        case .entryUnusable: .ldapEntryUnusable
        }
    }

    package var description: String {
        switch self {
        case .unavailable(let reason): "LDAP unavailable: \(reason)"
        case .entryUnusable(let reason): "LDAP entry unusable: \(reason)"
        }
    }
}

/// Looks a user up in the configured directory. Fails closed: every error that is not a
/// definite "no such entry" is `.unavailable`, so a local UID is never handed out because
/// the directory happened to be down.
package struct DirectoryLookup: Sendable {
    package let settings: HydraConfig.LDAP

    package init(settings: HydraConfig.LDAP) {
        self.settings = settings
    }

    package func person(named name: UserName) throws(DirectoryError) -> DirectoryAnswer {
        guard !settings.uri.isEmpty else { return .notConfigured }
        let entries: [LDAPEntry]
        do {
            let connection = try LDAPConnection(uri: settings.uri, timeoutSeconds: settings.timeoutSeconds)
            if settings.startTLS { try connection.startTLS() }
            if !settings.bindDN.isEmpty {
                try connection.bind(dn: settings.bindDN, password: try bindPassword())
            }
            entries = try connection.search(
                base: settings.base,
                filter: LDAPConnection.equalityFilter(attribute: settings.uidAttribute, value: name.value),
                attributes: [settings.uidAttribute, settings.uidNumberAttribute, settings.displayNameAttribute],
                limit: 2)
        } catch let failure {
            if failure.isSizeLimitExceeded {
                throw .entryUnusable("more than one entry has \(settings.uidAttribute)=\(name)")
            }
            throw .unavailable("\(failure) at \(settings.uri)")
        }
        return try Self.interpret(entries, name: name, settings: settings)
    }

    /// Turns a search result into an answer; separate so its rules are tested without a server.
    static func interpret(_ entries: [LDAPEntry], name: UserName, settings: HydraConfig.LDAP) throws(DirectoryError) -> DirectoryAnswer {
        guard let entry = entries.first else { return .noSuchEntry }
        guard entries.count == 1 else {
            throw .entryUnusable("\(entries.count) entries have \(settings.uidAttribute)=\(name)")
        }
        // The server matched case-insensitively; the entry must carry exactly this name.
        guard entry.attributes[settings.uidAttribute]?.contains(name.value) == true else {
            throw .entryUnusable("\(entry.dn) does not carry \(settings.uidAttribute)=\(name) exactly")
        }
        guard let numbers = entry.attributes[settings.uidNumberAttribute], !numbers.isEmpty else {
            throw .entryUnusable("\(entry.dn) has no \(settings.uidNumberAttribute)")
        }
        guard numbers.count == 1, let uid = UInt32(numbers[0]), uid < UInt32.max - 1 else {
            throw .entryUnusable("\(entry.dn) has an invalid \(settings.uidNumberAttribute) \(LogSafe.quote(numbers.joined(separator: ",")))")
        }
        let displayName = Self.gecosSafe(entry.attributes[settings.displayNameAttribute]?.first ?? "")
        return .found(DirectoryPerson(dn: entry.dn, uidNumber: uid, displayName: displayName))
    }

    /// The display name as a GECOS field: no ':' ',' '=' or control characters, at most 128 bytes.
    static func gecosSafe(_ name: String) -> String {
        var result = ""
        for scalar in name.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || ":,=\\".unicodeScalars.contains(scalar) {
                result += " "
            } else {
                result.unicodeScalars.append(scalar)
            }
            if result.utf8.count >= 128 { break }
        }
        return result.trimmingCharacters(in: .whitespaces)
    }

    private func bindPassword() throws(LDAPFailure) -> String {
        do {
            let bytes = try TrustedFile.read(settings.bindPasswordFile, secret: true, maxBytes: 4096)
            var password = String(decoding: bytes, as: UTF8.self)
            while password.hasSuffix("\n") || password.hasSuffix("\r") { password.removeLast() }
            return password
        } catch {
            throw LDAPFailure.local("reading bind_password_file \(settings.bindPasswordFile)", "\(error)")
        }
    }
}

import FoundationEssentials
