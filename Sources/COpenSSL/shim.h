// OpenSSL's CSPRNG (HydraSystem/Secret.swift) and SHA-1 for git blob ids
// (HydraSystem/Digest.swift): the only users of these pointers.
#include <openssl/rand.h>
#include <openssl/evp.h>
