import COpenSSL

/// Secrets from OpenSSL's CSPRNG: 256-bit tokens for the notebook server's login and the
/// `_xsrf` value of the auto-login form. Never logged, never put in argv or a URL.
package enum Secret {
    /// `byteCount` random bytes as lowercase hex (64 characters for the default 32 bytes).
    package static func hexToken(byteCount: Int = 32) -> String {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(byteCount)) }
        // RAND_bytes fails only when the OS entropy source is broken: no safe way on from there.
        precondition(ok == 1, "OpenSSL's CSPRNG failed: the system's entropy source is unavailable")
        return lowercaseHex(bytes)
    }

    /// Whether `text` is lowercase hex of exactly `count` digits (or of at least `count`), the
    /// form of every token, key and pin hydra makes: anything else read back is not one of them.
    package static func isLowercaseHex(_ text: some Collection<UInt8>, count: Int, orMore: Bool = false) -> Bool {
        (orMore ? text.count >= count : text.count == count) && text.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Whether two secrets are equal, in a time that does not tell how much of them matched.
    package static func matches(_ first: String, _ second: String) -> Bool {
        let (a, b) = (Array(first.utf8), Array(second.utf8))
        guard a.count == b.count, !a.isEmpty else { return false }
        return CRYPTO_memcmp(a, b, a.count) == 0
    }
}
