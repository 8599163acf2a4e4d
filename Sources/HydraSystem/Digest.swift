import COpenSSL

/// SHA-1 as git uses it to name blobs: a file's blob id without running git.
package enum GitBlobID {
    package static func of(_ content: [UInt8]) -> String {
        let header = Array("blob \(content.count)\0".utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let context = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha1(), nil)
        EVP_DigestUpdate(context, header, header.count)
        content.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        EVP_DigestFinal_ex(context, &digest, &length)
        return lowercaseHex(digest.prefix(Int(length)))
    }
}

/// HMAC-SHA-256: what proves that a value was made by whoever holds the key.
package enum MessageAuthentication {
    /// The HMAC-SHA-256 of `message` under `key`, as 64 lowercase hex digits.
    package static func sha256(key: [UInt8], message: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let made = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                     messageBytes.count, &digest, &length)
            }
        }
        // HMAC fails only without memory or a SHA-256 in libcrypto: no safe way on from there.
        precondition(made != nil, "OpenSSL's HMAC-SHA-256 failed")
        return lowercaseHex(digest.prefix(Int(length)))
    }
}

/// SHA-256, as the pin of a TLS certificate.
package enum SHA256Digest {
    package static func hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let made = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        precondition(made == 1, "OpenSSL's SHA-256 failed")
        return lowercaseHex(digest.prefix(Int(length)))
    }
}

/// Bytes as lowercase hex.
package func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    var text = ""
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return text
}
