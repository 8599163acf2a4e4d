// OpenLDAP's libldap. Wrapped by HydraSystem/LDAPConnection.swift only.
#include <ldap.h>
#include <lber.h>

// Macros that do not import into Swift, as functions.
static inline void *hydra_ldap_opt_on(void) { return LDAP_OPT_ON; }
static inline void *hydra_ldap_opt_off(void) { return LDAP_OPT_OFF; }
