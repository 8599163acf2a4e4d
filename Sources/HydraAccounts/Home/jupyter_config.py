# hydra's Jupyter Server configuration, the same for every person and site: ipynb-launch writes
# it to ~/.hydra/jupyter_config.py and the site's values, from /etc/hydra/hydra.toml, to
# jupyter_site.json beside it; the person's own come from the environment. Both are rewritten
# when hydra or hydra.toml changes: edit the site's configuration, not them.
import json
import os
import threading

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.logout import LogoutHandler

c = get_config()  # noqa: F821  (traitlets gives it to the file it runs)
user = os.environ["HYDRA_USER"]
# Read once, at start: a running server keeps the values it started with. (Not named
# jupyter_config.json: Jupyter would read that one too, as configuration of its own.)
with open(os.path.join(os.path.dirname(__file__), "jupyter_site.json")) as f:
    site = json.load(f)


def capped_log(path, limit):
    """The server's output and its kernels' (file descriptors 1 and 2, inherited) go
    through a pipe to a thread that keeps the log under `limit` bytes while the server
    runs: the older half moves to <log>.1. Nothing the server or a kernel prints can
    fill the runtime directory."""
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        log, size = None, 0
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                return
            try:
                if log is None or size + len(chunk) > limit // 2:
                    if log is not None:
                        log.close()
                        os.replace(path, path + ".1")
                    log = open(path, "ab", buffering=0)
                    size = log.tell()
                log.write(chunk[: limit // 2])
                size += min(len(chunk), limit // 2)
            except OSError:
                log = None  # a full or vanished directory drops output, never blocks the server

    threading.Thread(target=pump, name="hydra-capped-log", daemon=True).start()


capped_log(os.environ["HYDRA_LOG"], site["log_max_bytes"])

if "HYDRA_SOCK" in os.environ:
    # Only a Unix socket in the user's runtime directory (group: the web server; 0660).
    c.ServerApp.sock = os.environ["HYDRA_SOCK"]
    c.ServerApp.sock_mode = "0660"
else:
    # A Slurm job on a compute node (backend "slurm"): TCP on a free port of
    # [slurm] port_range. Every account on the node can connect, so every request needs
    # the token or the login cookie; Host and Origin checks stay on.
    import random
    import socket

    from jupyter_server.serverapp import ServerApp

    first, last = map(int, os.environ["HYDRA_PORT_RANGE"].split())

    def free_port():
        for port in random.sample(range(first, last + 1), min(64, last - first + 1)):
            with socket.socket() as probe:
                try:
                    probe.bind(("", port))
                    return port
                except OSError:
                    continue
        raise SystemExit(f"hydra: no free port in {first}-{last} on {socket.gethostname()}")

    # TLS with the key and certificate ipynb-launch made for this start (it pins them):
    # moved out of the shared home into this job's own folder of the node's /tmp, so
    # the key stays on the node, read by this server only.
    import shutil

    for variable, setting in (("HYDRA_TLS_KEY", "keyfile"), ("HYDRA_TLS_CERT", "certfile")):
        source = os.environ.pop(variable)
        target = os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], os.path.basename(source))
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        os.unlink(source)
        setattr(c.ServerApp, setting, target)
    c.ServerApp.ip = "0.0.0.0"
    c.ServerApp.port = free_port()
    c.ServerApp.port_retries = 0
    c.ServerApp.allow_remote_access = False
    c.ServerApp.allow_unauthenticated_access = False
    _bind_tcp = ServerApp._bind_http_server_tcp

    def _bind_tcp_and_report(self):
        """Once the server holds its port (and nobody else can), ipynb-launch learns it:
        "JOB HOSTNAME PORT" in the shared home."""
        bound = _bind_tcp(self)
        if bound:
            endpoint = os.environ["HYDRA_ENDPOINT_FILE"]
            with open(endpoint + ".new", "w") as f:
                f.write(f"{os.environ.get('SLURM_JOB_ID', '-')} {socket.gethostname()} {self.port}\n")
            os.replace(endpoint + ".new", endpoint)
        return bound

    ServerApp._bind_http_server_tcp = _bind_tcp_and_report
c.ServerApp.base_url = f"/user/{user}/"
c.ServerApp.root_dir = os.environ["HOME"]
c.ServerApp.open_browser = False
# Apache keeps the site's Host header: accept it, keep the Host and Origin checks on.
c.ServerApp.local_hostnames = ["localhost", site["host"]]
c.ServerApp.disable_check_xsrf = False
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
# Idle shutdown and kernel culling: Jupyter's own.
c.ServerApp.shutdown_no_activity_timeout = site["idle_timeout_seconds"]
c.MappingKernelManager.cull_idle_timeout = site["kernel_idle_timeout_seconds"]
c.MappingKernelManager.cull_interval = site["kernel_cull_interval_seconds"]
c.MappingKernelManager.cull_connected = True
# Kernel channels over IPC files in the runtime directory, not loopback TCP ports.
c.KernelManager.transport = "ipc"
# The site's limits explained in the kernels (KernelLimitHelp): when ipynb-launch wrote the
# IPython extension to the runtime directory, every IPython kernel gets it on its command
# line. Not through a configuration file: JUPYTER_CONFIG_PATH does not reach kernels (IPython
# reads its profile, sys.prefix/etc/ipython and /etc/ipython), and the person's own
# ~/.ipython configuration, read last, may replace `extensions` or `exec_lines`. The command
# line wins over every file, extra_extensions adds to their `extensions`, and their startup
# files still run, after it. Other kernels (R, ...) are left as they are.
kernel_extension = os.environ.pop("HYDRA_KERNEL_EXTENSION", "")
if kernel_extension:
    from jupyter_client.kernelspec import KernelSpecManager

    class HydraKernelSpecManager(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            spec = super().get_kernel_spec(kernel_name)
            if any("ipykernel" in word for word in spec.argv):
                spec.argv = [*spec.argv, "--IPKernelApp.extra_extensions=" + site["kernel_extension"]]
                path = [kernel_extension, spec.env.get("PYTHONPATH", "")]
                spec.env = {**spec.env, "PYTHONPATH": os.pathsep.join(filter(None, path))}
            return spec

    c.ServerApp.kernel_spec_manager_class = HydraKernelSpecManager
c.PasswordIdentityProvider.allow_password_change = False
c.IdentityProvider.cookie_name = "hydra-jupyter"
c.IdentityProvider.secure_cookie = site["https"]
# A new secret at every start: old login cookies die with the server.
c.ServerApp.cookie_secret = os.urandom(32)
# The token: from a file of the user's own that ipynb-launch wrote, read once and removed
# (never in a command line, and kernels and terminals do not inherit it).
token_file = os.environ.pop("HYDRA_TOKEN_FILE")
with open(token_file) as f:
    c.IdentityProvider.token = f.read().strip()
os.unlink(token_file)


class HydraLogoutHandler(LogoutHandler):
    """Logging out leads back to the site's front, which can log the user in again."""

    @allow_unauthenticated
    def get(self):
        self.identity_provider.clear_login_cookie(self)
        self.redirect("/?logged_out=1")


c.IdentityProvider.logout_handler_class = HydraLogoutHandler

# JupyterLab puts the server's token into every page, and its requests then carry
# `Authorization: token ...`, which replaces the browser's own Authorization header
# (Basic, Negotiate) that Apache needs: every API call would get 401. As under
# JupyterHub, the page gets no token; the login cookie and XSRF do the work.
try:
    from jupyterlab.labapp import LabApp

    _lab_handlers = LabApp.initialize_handlers

    def _handlers_without_token(self):
        _lab_handlers(self)
        self.serverapp.web_app.settings["page_config_data"]["token"] = ""

    LabApp.initialize_handlers = _handlers_without_token
except ImportError:
    pass
