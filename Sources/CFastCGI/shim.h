// libfcgi's request-oriented API (fcgiapp.h). Wrapped by HydraFastCGI/FastCGI.swift only.
#include <fcgiapp.h>
