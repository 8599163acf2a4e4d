"""JupyterHub beside the hydra sandbox site, for scripts/bench.py (issue 8).

The standard peer, set up the way its documentation describes a single machine with local
accounts: JupyterHub from PyPI, LocalProcessSpawner (each user's server runs as that Unix user,
like hydra's), its default proxy, the Node configurable-http-proxy (Debian's package
node-configurable-http-proxy, installed by scripts/bench), DummyAuthenticator (JupyterHub's own
authenticator that needs no other service). Its environment, /opt/hydra/bench-hub, is created
by scripts/bench outside the sandbox with the same pinned Jupyter Server, JupyterLab and
ipykernel as the users' hydra environment. Everything else here happens inside the sandbox:
accounts, the hub's database and files vanish with it.

`SlurmHub` (issue 26): the Slurm sites' peer, JupyterHub with batchspawner's SlurmSpawner on the
sandbox's test cluster. batchspawner 1.3.0 is tested with JupyterHub up to 4.x, so it has an
environment of its own ($HYDRA_BENCH_SLURM_HUB_ENV, default /opt/hydra/bench-hub-slurm): JupyterHub
4.1, batchspawner 1.3.0 and `requests` (which batchspawner-singleuser imports but 1.3.0's
metadata does not name), with the same pinned Jupyter.
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
SLURM_HUB_ENV = pathlib.Path(os.environ.get("HYDRA_BENCH_SLURM_HUB_ENV", "/opt/hydra/bench-hub-slurm"))
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



def hub_config(env, directory, spawner):
    """jupyterhub_config.py: the documented single-machine setup, with `spawner`'s lines."""
    return f"""
# Written by scripts/bench_hub.py: JupyterHub's documented single-machine setup.
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{HUB_PORT}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Spawner.cmd = ["{env}/bin/jupyterhub-singleuser"]
# Like hydra: the browser lands in JupyterLab.
c.Spawner.default_url = "/lab"
# Like hydra's server.start_timeout_seconds = 60 (JupyterHub's defaults: 60 s and 30 s).
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.proxy_class = "jupyterhub.proxy.ConfigurableHTTPProxy"
c.ConfigurableHTTPProxy.command = ["{PROXY_COMMAND}"]
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.log_level = "WARN"
c.JupyterHub.db_url = "sqlite:///{directory}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{directory}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{directory}/jupyterhub.pid"
# No idle culler, no service process: nothing else that hydra does not run either. The one
# service is a token for the benchmark, which stops the servers of its websocket crowd.
c.JupyterHub.services = [{{"name": "bench", "api_token": "{API_TOKEN}"}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["servers"], "services": ["bench"]}}]
{spawner}
"""


LOCAL_SPAWNER = 'c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"'

# batchspawner's SlurmSpawner as its README sets it up, on the sandbox's cluster: the job runs the
# server on a node (sbatch as the user, through sudo as the spawner does by default); the node
# reaches the hub's API at the web host's address on the cluster's network; the proxy reaches
# the server at the node's address (squeue names the node; its address is 169.254.N.2, as
# scripts/slurm-cluster makes them). Like hydra's job: the partition "hydra", a 30-minute limit,
# no job step (hydra's job script runs the server itself).
SLURM_SPAWNER = f"""
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_ip = "169.254.0.1"
c.SlurmSpawner.batchspawner_singleuser_cmd = "{SLURM_HUB_ENV}/bin/batchspawner-singleuser"
c.SlurmSpawner.req_partition = "hydra"
c.SlurmSpawner.req_runtime = "30"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.state_exechost_re = r"\\s+node(\\d+)$"
c.SlurmSpawner.state_exechost_exp = r"169.254.\\1.2"
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
    wanted = {"jupyterhub", "batchspawner", "jupyter_server", "jupyterlab", "ipykernel", "tornado"}
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
    """JupyterHub + configurable-http-proxy, started as root (LocalProcessSpawner needs it), from
    the environment `env` with the spawner `spawner` (lines of jupyterhub_config.py); its
    database in `directory`, its output in `log`. One at a time: they share the ports."""

    def __init__(self, env=HUB_ENV, spawner=LOCAL_SPAWNER, directory=HUB_DIR, log=HUB_LOG):
        self.process = None
        self.env, self.spawner, self.directory, self.log_path = env, spawner, directory, log

    def prepare(self, users):
        if not (self.env / "bin/jupyterhub").exists():
            raise SystemExit(f"{self.env} has no jupyterhub: run scripts/bench without HYDRA_OFFLINE=1 once")
        for name in users:
            subprocess.run(["useradd", "-m", "--no-log-init", "-s", "/bin/bash", name], check=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        (self.directory / "jupyterhub_config.py").write_text(hub_config(self.env, self.directory, self.spawner))
        # The sandbox's overlay: these edits of the environment vanish with it.
        conf = self.env / "etc/jupyter/jupyter_server_config.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "zz-hydra-bench.json").write_text(json.dumps(EXTENSIONS))
        (self.env / "etc/jupyter/jupyter_server_config.py").write_text(SERVER_CONFIG)
        lab = self.env / "share/jupyter/lab/settings"
        lab.mkdir(parents=True, exist_ok=True)
        (lab / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
        subprocess.run(["chmod", "-R", "a+rX", str(self.env / "etc"), str(self.env / "share/jupyter")], check=True)

    def start(self):
        env = {"PATH": f"{self.env}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
               "NODE_PATH": NODE_PATH}
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([f"{self.env}/bin/jupyterhub", "-f", str(self.directory / "jupyterhub_config.py")],
                                        cwd=self.directory, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited {self.process.returncode}; see {self.log_path}")
            probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{HUB_PORT}/hub/health"],
                                   capture_output=True, text=True)
            if probe.stdout == "200":
                return
            time.sleep(0.1)
        raise RuntimeError(f"JupyterHub did not answer on port {HUB_PORT}; see {self.log_path}")

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
