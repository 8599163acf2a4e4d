# /opt/hydra/etc/jupyter_hydra_config.py  -- one static file for every user server.
# Launch (as the user, cwd=$HOME, umask 077):
#   env -i HOME=... USER=NAME LOGNAME=NAME PATH=/opt/hydra/jupyter/bin:/usr/bin:/bin LANG=C.UTF-8 \
#       SHELL=... HYDRA_USER=NAME HYDRA_SOCK=/run/hydra/NAME/jupyter.sock \
#       JUPYTER_RUNTIME_DIR=/run/hydra/NAME/runtime HYDRA_TOKEN=<48 hex> \
#       /opt/hydra/jupyter/bin/jupyter-lab --config=/opt/hydra/etc/jupyter_hydra_config.py
import os

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.logout import LogoutHandler

c = get_config()  # noqa: F821
user = os.environ["HYDRA_USER"]

c.ServerApp.sock = os.environ["HYDRA_SOCK"]
c.ServerApp.sock_mode = "0660"            # socket group = dir group (www-data, setgid dir)
c.ServerApp.base_url = f"/user/{user}/"
c.ServerApp.root_dir = os.environ["HOME"]
c.ServerApp.open_browser = False
# Host check: Apache uses ProxyPreserveHost On, so Jupyter sees the public Host.
c.ServerApp.local_hostnames = ["localhost", os.environ.get("HYDRA_PUBLIC_HOST", "site.example")]
c.ServerApp.shutdown_no_activity_timeout = 3600
c.MappingKernelManager.cull_idle_timeout = 1800
c.MappingKernelManager.cull_interval = 300
c.MappingKernelManager.cull_connected = True
c.KernelManager.transport = "ipc"         # kernel ZMQ sockets in the 0700 runtime dir, no 127.0.0.1 ports
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}   # skips `npm prefix -g` at start
c.PasswordIdentityProvider.allow_password_change = False   # POST new_password must not write ~/.jupyter
c.IdentityProvider.cookie_name = "hydra-jupyter"           # default would be username-<host>
c.IdentityProvider.secure_cookie = os.environ.get("HYDRA_HTTPS", "1") == "1"  # Apache->socket is http
c.ServerApp.cookie_secret = os.urandom(32)  # restart = all login cookies invalid; no secret file

# token from the environment, removed so kernels/terminals don't inherit it
_tok = os.environ.pop("HYDRA_TOKEN", None)
if _tok:
    c.IdentityProvider.token = _tok


class HydraLogoutHandler(LogoutHandler):
    """GET /user/NAME/logout: clear the login cookie, back to the front."""

    @allow_unauthenticated
    def get(self):
        self.identity_provider.clear_login_cookie(self)
        self.redirect("/?logged_out=1")


c.IdentityProvider.logout_handler_class = HydraLogoutHandler
