// libfcgi's request-oriented API (fcgiapp.h). Wrapped by HydraKit/Front/FastCGI.swift only.
#include <fcgiapp.h>
