import CLDAP
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the LDAP protocol or transport, with libldap's code and text.
package struct LDAPFailure: Error, Equatable, CustomStringConvertible {
    package let operation: String
    package let code: Int32
    package let message: String
    package var description: String { "\(operation): \(message) (LDAP result \(code))" }
    /// A failure on this side (libldap's LDAP_LOCAL_ERROR), such as an unreadable password file.
    package static func local(_ operation: String, _ message: String) -> LDAPFailure {
        LDAPFailure(operation: operation, code: LDAP_LOCAL_ERROR, message: message)
    }
    /// More entries matched than the search allowed.
    package var isSizeLimitExceeded: Bool { code == LDAP_SIZELIMIT_EXCEEDED }
}

/// One directory entry: its DN and the values of the attributes asked for.
package struct LDAPEntry: Sendable, Equatable {
    package let dn: String
    package let attributes: [String: [String]]
}

/// The only code that touches libldap's pointers: connect, optional StartTLS, optional simple
/// bind, one subtree search. Every operation is bounded by the timeout.
package final class LDAPConnection {
    private var handle: OpaquePointer?
    private let timeoutSeconds: Int

    package init(uri: String, timeoutSeconds: Int) throws(LDAPFailure) {
        self.timeoutSeconds = timeoutSeconds
        var ld: OpaquePointer?
        let rc = ldap_initialize(&ld, uri)
        guard rc == LDAP_SUCCESS, let ld else { throw Self.failure("connecting to \(uri)", rc) }
        handle = ld
        var version: Int32 = LDAP_VERSION3
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &timeout)
        ldap_set_option(ld, LDAP_OPT_REFERRALS, hydra_ldap_opt_off())
        // Restart interrupted calls instead of failing them.
        ldap_set_option(ld, LDAP_OPT_RESTART, hydra_ldap_opt_on())
    }

    deinit {
        if let handle { ldap_unbind_ext_s(handle, nil, nil) }
    }

    package func startTLS() throws(LDAPFailure) {
        let rc = ldap_start_tls_s(handle, nil, nil)
        guard rc == LDAP_SUCCESS else { throw failure("StartTLS", rc) }
    }

    package func bind(dn: String, password: String) throws(LDAPFailure) {
        var bytes = Array(password.utf8)
        let rc = bytes.withUnsafeMutableBufferPointer { buffer in
            var credential = berval(bv_len: ber_len_t(buffer.count), bv_val: UnsafeMutableRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self))
            // A nil mechanism is LDAP_SASL_SIMPLE: a simple bind.
            return ldap_sasl_bind_s(handle, dn, nil, &credential, nil, nil, nil)
        }
        for index in bytes.indices { bytes[index] = 0 }
        guard rc == LDAP_SUCCESS else { throw failure("binding as \(dn)", rc) }
    }

    /// `(attribute=value)` with the value escaped per RFC 4515, so no input can widen the filter.
    package static func equalityFilter(attribute: String, value: String) -> String {
        var input = Array(value.utf8)
        return input.withUnsafeMutableBufferPointer { buffer in
            var raw = berval(bv_len: ber_len_t(buffer.count), bv_val: UnsafeMutableRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: CChar.self))
            var escaped = berval()
            guard ldap_bv2escaped_filter_value(&raw, &escaped) == 0, let pointer = escaped.bv_val else {
                // Only an allocation failure gets here; a filter that matches nothing is the safe answer.
                return "(\(attribute)=\\00)"
            }
            defer { ber_memfree(pointer) }
            return "(\(attribute)=\(String(cString: pointer)))"
        }
    }

    /// A subtree search returning at most `limit` entries (more: LDAP_SIZELIMIT_EXCEEDED).
    package func search(base: String, filter: String, attributes: [String], limit: Int32) throws(LDAPFailure) -> [LDAPEntry] {
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        var result: OpaquePointer?
        var attributeList = attributes.map { strdup($0) } + [nil]
        defer { for pointer in attributeList { free(pointer) } }
        let rc = ldap_search_ext_s(handle, base, LDAP_SCOPE_SUBTREE, filter, &attributeList, 0, nil, nil, &timeout, limit, &result)
        defer { if let result { ldap_msgfree(result) } }
        guard rc == LDAP_SUCCESS else { throw failure("searching \(base) for \(filter)", rc) }

        var entries: [LDAPEntry] = []
        var entry = ldap_first_entry(handle, result)
        while let current = entry {
            var dn = ""
            if let dnPointer = ldap_get_dn(handle, current) {
                dn = String(cString: dnPointer)
                ldap_memfree(dnPointer)
            }
            var values: [String: [String]] = [:]
            for attribute in attributes {
                guard let list = ldap_get_values_len(handle, current, attribute) else { continue }
                var strings: [String] = []
                var cursor = list
                while let value = cursor.pointee {
                    let buffer = UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len))
                    strings.append(String(decoding: buffer, as: UTF8.self))
                    cursor += 1
                }
                ldap_value_free_len(list)
                values[attribute] = strings
            }
            entries.append(LDAPEntry(dn: dn, attributes: values))
            entry = ldap_next_entry(handle, current)
        }
        return entries
    }

    private func failure(_ operation: String, _ rc: Int32) -> LDAPFailure {
        Self.failure(operation, rc)
    }

    private static func failure(_ operation: String, _ rc: Int32) -> LDAPFailure {
        LDAPFailure(operation: operation, code: rc, message: String(cString: ldap_err2string(rc)))
    }
}
