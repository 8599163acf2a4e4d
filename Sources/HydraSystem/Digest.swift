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
        return digest.prefix(Int(length)).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}
