// OpenSSL's CSPRNG and constant-time compare. Wrapped by HydraKit/System/Secret.swift only.
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
