import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// A key and a self-signed certificate made for one server start, and its pin: the SHA-256 of
/// the certificate's DER encoding, in hex. Whoever holds the pin tells that one server from any
/// other listener without a CA (a site-wide CA would let anybody it issued a certificate to
/// pass for anyone's server).
package struct PinnedCertificate: Sendable {
    package let keyPEM: [UInt8]
    package let certificatePEM: [UInt8]
    package let pin: String

    /// A new EC P-256 key and a certificate for it, valid from an hour ago for `validDays`.
    package static func make(commonName: String, validDays: Int = 30) throws(StepFailure) -> PinnedCertificate {
        func failed(_ step: String) -> StepFailure { StepFailure("making the server's TLS certificate: \(step) failed") }
        guard let key = hydra_ec_p256_key() else { throw failed("EC key generation") }
        defer { EVP_PKEY_free(key) }
        guard let certificate = X509_new() else { throw failed("X509_new") }
        defer { X509_free(certificate) }
        var serial: UInt64 = 0
        withUnsafeMutableBytes(of: &serial) { _ = RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard X509_set_version(certificate, 2) == 1,
              ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate), serial >> 1) == 1,
              X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
              X509_gmtime_adj(X509_getm_notAfter(certificate), validDays * 86400) != nil,
              X509_set_pubkey(certificate, key) == 1,
              hydra_x509_name_self(certificate, commonName) == 1,
              X509_sign(certificate, key, EVP_sha256()) > 0 else { throw failed("signing") }
        let keyPEM = try pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) == 1 }
        let certificatePEM = try pem { PEM_write_bio_X509($0, certificate) == 1 }
        return PinnedCertificate(keyPEM: keyPEM, certificatePEM: certificatePEM, pin: try pin(of: certificate))
    }

    /// The pin of a certificate (its DER encoding's SHA-256, in hex).
    static func pin(of certificate: OpaquePointer) throws(StepFailure) -> String {
        let length = i2d_X509(certificate, nil)
        guard length > 0 else { throw StepFailure("encoding a TLS certificate as DER failed") }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor = buffer.baseAddress
            return i2d_X509(certificate, &cursor)
        }
        guard written == length else { throw StepFailure("encoding a TLS certificate as DER failed") }
        return SHA256Digest.hex(der)
    }

    private static func pem(_ write: (OpaquePointer) -> Bool) throws(StepFailure) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw StepFailure("BIO_new failed") }
        defer { BIO_free(bio) }
        guard write(bio) else { throw StepFailure("writing PEM failed") }
        var data: UnsafeMutablePointer<CChar>?
        let count = hydra_bio_contents(bio, &data)
        guard count > 0, let data else { throw StepFailure("reading PEM failed") }
        return data.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }
}

/// A request and its whole answer over TLS, to a peer that shows the pinned certificate: how
/// ipynb-launch asks a server on a compute node whether it is up, over the cluster's network.
package enum PinnedTLS {
    /// Sends `request` once the peer has shown the certificate `pin` names, and returns what comes
    /// back until the peer closes (at most `limit` bytes); nil when the handshake fails, the
    /// certificate is another one, or sending fails. Nothing is sent to any other peer.
    package static func exchange(over connection: Descriptor, pin: String, request: [UInt8], timeoutSeconds: Double,
                                 limit: Int = 1 << 20) -> [UInt8]? {
        let fd = connection.rawValue
        StreamExchange.block(fd, timeoutSeconds: timeoutSeconds)
        guard let context = SSL_CTX_new(TLS_client_method()) else { return nil }
        defer { SSL_CTX_free(context) }
        // No CA: the pin below is the whole check.
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        guard hydra_ssl_ctx_require_tls12(context) == 1, let ssl = SSL_new(context) else { return nil }
        defer { SSL_free(ssl) }
        guard SSL_set_fd(ssl, fd) == 1, SSL_connect(ssl) == 1, let peer = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(peer) }
        guard let shown = try? PinnedCertificate.pin(of: peer), Secret.matches(shown, pin) else { return nil }
        var offset = 0
        while offset < request.count {
            let count = request.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32($0.count - offset)) }
            guard count > 0 else { return nil }
            offset += Int(count)
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while response.count < limit {
            let count = SSL_read(ssl, &buffer, Int32(buffer.count))
            if count <= 0 { break }
            response += buffer[0..<Int(count)]
        }
        return response
    }
}
