"""JupyterHub beside the hydra sandbox site, for scripts/bench.py (issue 8).

The standard peer, set up the way its documentation describes a single machine with local
accounts: JupyterHub from PyPI, LocalProcessSpawner (each user's server runs as that Unix user,
like hydra's), its default proxy, the Node configurable-http-proxy (Debian's package
node-configurable-http-proxy, installed by scripts/bench), DummyAuthenticator (JupyterHub's own
authenticator that needs no other service). Its environment, /opt/hydra/bench-hub, is created
by scripts/bench outside the sandbox with the same pinned Jupyter Server, JupyterLab and
ipykernel as the users' hydra environment. Everything else here happens inside the sandbox:
accounts, the hub's database and files vanish with it.
"""
import json
import os
import pathlib
import secrets
import subprocess
import time
import urllib.error
import urllib.request

from hydra_site import stop_process
from load_support import pids

HUB_ENV = pathlib.Path(os.environ.get("HYDRA_BENCH_HUB_ENV", "/opt/hydra/bench-hub"))
HUB_DIR = pathlib.Path("/var/lib/bench-hub")
HUB_LOG = pathlib.Path("/var/log/bench-hub.log")
HUB_PORT = 8000       # the proxy's public port (hydra's Apache has 80, 8080 and 8083 in this run)
HUB_HOST = f"localhost:{HUB_PORT}"
HUB_PASSWORD = "any"  # DummyAuthenticator accepts any password
# The Node proxy as Debian installs it: its modules are in /usr/share/nodejs, where the node
# on this machine (NodeSource's build) does not look unless NODE_PATH says so.
PROXY_COMMAND = "/usr/bin/configurable-http-proxy"
NODE_PATH = "/usr/share/nodejs"
# The benchmark's own API token (a service without a process), to stop servers it started.
API_TOKEN = secrets.token_hex(32)

CONFIG = f"""
# Written by scripts/bench_hub.py: JupyterHub's documented single-machine setup.
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{HUB_PORT}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = ["{HUB_ENV}/bin/jupyterhub-singleuser"]
# Like hydra: the browser lands in JupyterLab.
c.Spawner.default_url = "/lab"
# Like hydra's server.start_timeout_seconds = 60 (JupyterHub's defaults: 60 s and 30 s).
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.proxy_class = "jupyterhub.proxy.ConfigurableHTTPProxy"
c.ConfigurableHTTPProxy.command = ["{PROXY_COMMAND}"]
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.log_level = "WARN"
c.JupyterHub.db_url = "sqlite:///{HUB_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{HUB_DIR}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{HUB_DIR}/jupyterhub.pid"
# No idle culler, no service process: nothing else that hydra does not run either. The one
# service is a token for the benchmark, which stops the servers of its websocket crowd.
c.JupyterHub.services = [{{"name": "bench", "api_token": "{API_TOKEN}"}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["servers"], "services": ["bench"]}}]
"""

# The users' Jupyter servers get hydra's Jupyter settings where they are not architecture
# (hydra: jupyter_lsp off, kernel channels over IPC files, JupyterLab's news check off), so that
# what differs is the launcher and the proxy, not the Jupyter Server.
# (Extensions are switched in config.d JSON, which is merged with the packages' own; other
# settings in a Python config file, which a config.d JSON file cannot carry.)
EXTENSIONS = {"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}}
SERVER_CONFIG = 'c = get_config()  # noqa: F821\nc.KernelManager.transport = "ipc"\n'
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def versions(env):
    """name -> version of the packages compared, read from the environment's metadata."""
    wanted = {"jupyterhub", "jupyter_server", "jupyterlab", "ipykernel", "tornado"}
    found = {}
    for meta in (env / "lib").glob("python3*/site-packages/*.dist-info/METADATA"):
        name = version = None
        for line in meta.read_text(errors="replace").splitlines()[:10]:
            if line.startswith("Name: "):
                name = line[6:].strip().lower().replace("-", "_")
            elif line.startswith("Version: "):
                version = line[9:].strip()
        if name in wanted:
            found[name] = version
    return found


def proxy_versions():
    """The versions of the Node proxy and of node, as their own --version says."""
    env = {**os.environ, "NODE_PATH": NODE_PATH}
    proxy = subprocess.run([PROXY_COMMAND, "--version"], capture_output=True, text=True, env=env).stdout.strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"configurable-http-proxy (node)": proxy, "node": node}


class Hub:
    """JupyterHub + configurable-http-proxy, started as root (LocalProcessSpawner needs it)."""

    def __init__(self):
        self.process = None

    def prepare(self, users):
        if not (HUB_ENV / "bin/jupyterhub").exists():
            raise SystemExit(f"{HUB_ENV} has no jupyterhub: run scripts/bench without HYDRA_OFFLINE=1 once")
        for name in users:
            subprocess.run(["useradd", "-m", "--no-log-init", "-s", "/bin/bash", name], check=True)
        HUB_DIR.mkdir(parents=True, exist_ok=True)
        HUB_DIR.chmod(0o700)
        (HUB_DIR / "jupyterhub_config.py").write_text(CONFIG)
        # The sandbox's overlay: these edits of the environment vanish with it.
        conf = HUB_ENV / "etc/jupyter/jupyter_server_config.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "zz-hydra-bench.json").write_text(json.dumps(EXTENSIONS))
        (HUB_ENV / "etc/jupyter/jupyter_server_config.py").write_text(SERVER_CONFIG)
        lab = HUB_ENV / "share/jupyter/lab/settings"
        lab.mkdir(parents=True, exist_ok=True)
        (lab / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
        subprocess.run(["chmod", "-R", "a+rX", str(HUB_ENV / "etc"), str(HUB_ENV / "share/jupyter")], check=True)

    def start(self):
        env = {"PATH": f"{HUB_ENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "NODE_PATH": NODE_PATH}
        self.log = open(HUB_LOG, "ab")
        self.process = subprocess.Popen([f"{HUB_ENV}/bin/jupyterhub", "-f", str(HUB_DIR / "jupyterhub_config.py")],
                                        cwd=HUB_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited {self.process.returncode}; see {HUB_LOG}")
            probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{HUB_PORT}/hub/health"],
                                   capture_output=True, text=True)
            if probe.stdout == "200":
                return
            time.sleep(0.1)
        raise RuntimeError(f"JupyterHub did not answer on port {HUB_PORT}; see {HUB_LOG}")

    def pids(self):
        """The hub and its proxy (the proxy is the hub's child): [hub, proxy]."""
        if not self.process:
            return []
        proxy = [p for p in pids("-P", str(self.process.pid))
                 if "configurable-http-proxy" in pathlib.Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        return [self.process.pid] + proxy

    def stop_server(self, user):
        """Asks the hub's REST API to stop `user`'s server (as an admin would); returns the status."""
        request = urllib.request.Request(f"http://127.0.0.1:{HUB_PORT}/hub/api/users/{user}/server", method="DELETE",
                                         headers={"Authorization": f"token {API_TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self):
        stop_process(self.process, grace=20)
