// OpenSSL for HydraSystem, the only user of these pointers: its CSPRNG (Secret.swift), SHA-1 for
// git blob ids and HMAC-SHA-256 for the front's form tokens (Digest.swift), and a per-start key
// and self-signed certificate with a TLS client that pins it (PinnedTLS.swift).
#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/pem.h>

// What Swift cannot call directly (variadic functions, function-like macros), one line each.

/// A new EC key on P-256, or NULL.
static inline EVP_PKEY *hydra_ec_p256_key(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/// The bytes a memory BIO holds; their count.
static inline long hydra_bio_contents(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// TLS 1.2 at least.
static inline int hydra_ssl_ctx_require_tls12(SSL_CTX *context) {
    return (int)SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
}

/// CN=name as the certificate's subject and issuer (it is self-signed); 1 when done.
static inline int hydra_x509_name_self(X509 *certificate, const char *name) {
    X509_NAME *subject = X509_get_subject_name(certificate);
    if (!X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0)) return 0;
    return X509_set_issuer_name(certificate, subject);
}
