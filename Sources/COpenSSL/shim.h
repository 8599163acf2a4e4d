// OpenSSL's CSPRNG (HydraKit/System/Secret.swift) and SHA-1 for git blob ids
// (HydraKit/System/Digest.swift): the only users of these pointers.
#include <openssl/rand.h>
#include <openssl/evp.h>
