"""hydra's Jupyter Server configuration (Sources/HydraAccounts/Home/jupyter_config.py), loaded as
Jupyter loads the file given as --config (traitlets' Application.load_config_file), with the
values ipynb-launch writes beside it (jupyter_site.json here: a default https site, as the Swift
tests check). Run with the users' Jupyter environment (server.python_env), as scripts/test's
unit tier does:

    /opt/hydra/jupyter/bin/python -B -m unittest discover -s Tests/Python -v
"""
import collections
import json
import multiprocessing
import os
import pathlib
import shutil
import socket
import tempfile
import threading
import time
import traceback
import types
import unittest

# Imported once, before the forks: each child starts with them loaded. The file patches these
# classes only in the child that loads it.
from jupyter_server.serverapp import ServerApp
from jupyterlab.labapp import LabApp
from traitlets.config.application import Application

HERE = pathlib.Path(__file__).resolve().parent
SHIPPED = HERE.parents[1] / "Sources" / "HydraAccounts" / "Home" / "jupyter_config.py"
SAMPLE = json.loads((HERE / "jupyter_site.json").read_text())
TOKEN = "t" * 64
Loaded = collections.namedtuple("Loaded", "settings environment files probed")


def plain(config):
    """The settings as picklable data: classes by name, the rest as they are."""
    return {section: {key: f"class {value.__name__}" if isinstance(value, type) else value for key, value in values.items()}
            for section, values in config.items()}


class JupyterConfigTest(unittest.TestCase):
    def setUp(self):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="hydra-jupyter-config-"))
        self.addCleanup(shutil.rmtree, self.folder)
        (self.folder / "home").mkdir()
        shutil.copyfile(SHIPPED, self.folder / "jupyter_config.py")
        self.token_file = self.folder / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.log = self.folder / "server.log"
        self.environment = {"HYDRA_USER": "alice", "HOME": str(self.folder / "home"), "HYDRA_LOG": str(self.log),
                            "HYDRA_TOKEN_FILE": str(self.token_file), "HYDRA_SOCK": str(self.folder / "jupyter.sock")}

    def load(self, site=None, probe=None):
        """Loads the configuration in a forked child, since the file points file descriptors 1
        and 2 at its log pipe and patches Jupyter's classes. Returns its settings, the child's
        HYDRA_* environment afterwards, the files Jupyter read, and what probe(namespace)
        returned there (namespace: the file's globals, to reach what it defines)."""
        (self.folder / "jupyter_site.json").write_text(json.dumps(SAMPLE if site is None else site))
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)

        def child():
            try:
                for name in [name for name in os.environ if name.startswith("HYDRA_")]:
                    del os.environ[name]
                os.environ.update(self.environment)
                # As jupyter-lab --config=FOLDER/jupyter_config.py, but raising what the file raises
                # (Jupyter logs it and starts without the file's settings).
                app = Application(raise_config_file_errors=True)
                app.load_config_file("jupyter_config.py", path=str(self.folder))
                config = app.config
                # The file's globals, to reach what it defines: its logout handler's, always there.
                namespace = config.IdentityProvider.logout_handler_class.get.__wrapped__.__globals__
                environment = {name: value for name, value in os.environ.items() if name.startswith("HYDRA_")}
                send.send(("ok", (plain(config), environment, app.loaded_config_files, probe(namespace) if probe else None)))
            except BaseException:
                send.send(("error", traceback.format_exc()))
            finally:
                send.close()

        process = context.Process(target=child)
        process.start()
        send.close()
        try:
            outcome, value = receive.recv()
        finally:
            process.join(30)
        if outcome == "error":
            raise AssertionError(f"loading the configuration failed in the child:\n{value}")
        return Loaded(*value)

    def test_unix_socket_site(self):
        """The local backend: a Unix socket only, the site's host accepted, Jupyter's own idle
        shutdown and culling, a secure cookie on an https site, the token read once and removed."""
        loaded = self.load()
        self.assertEqual(loaded.files, [str(self.folder / "jupyter_config.py")])  # the values are not Jupyter's
        settings, environment = loaded.settings, loaded.environment
        server = settings["ServerApp"]
        self.assertEqual(server["sock"], str(self.folder / "jupyter.sock"))
        self.assertEqual(server["sock_mode"], "0660")
        for tcp in ("ip", "port", "keyfile", "certfile"):
            self.assertNotIn(tcp, server)
        self.assertEqual(server["base_url"], "/user/alice/")
        self.assertEqual(server["root_dir"], str(self.folder / "home"))
        self.assertIs(server["open_browser"], False)
        self.assertEqual(server["local_hostnames"], ["localhost", "jupyter.example.org"])
        self.assertIs(server["disable_check_xsrf"], False)
        self.assertEqual(server["jpserver_extensions"], {"jupyter_lsp": False})
        self.assertEqual(server["shutdown_no_activity_timeout"], 7200)
        self.assertEqual(len(server["cookie_secret"]), 32)
        self.assertEqual(settings["MappingKernelManager"],
                         {"cull_idle_timeout": 3600, "cull_interval": 300, "cull_connected": True})
        self.assertEqual(settings["KernelManager"], {"transport": "ipc"})
        self.assertEqual(settings["PasswordIdentityProvider"], {"allow_password_change": False})
        identity = settings["IdentityProvider"]
        self.assertEqual(identity["cookie_name"], "hydra-jupyter")
        self.assertIs(identity["secure_cookie"], True)
        self.assertEqual(identity["token"], TOKEN)
        self.assertEqual(identity["logout_handler_class"], "class HydraLogoutHandler")
        self.assertFalse(self.token_file.exists())
        self.assertNotIn("HYDRA_TOKEN_FILE", environment)
        # No limits to explain: Jupyter's own kernel spec manager.
        self.assertNotIn("kernel_spec_manager_class", server)

    def test_http_site(self):
        settings = self.load({**SAMPLE, "host": "hydra.internal", "https": False}).settings
        self.assertEqual(settings["ServerApp"]["local_hostnames"], ["localhost", "hydra.internal"])
        self.assertIs(settings["IdentityProvider"]["secure_cookie"], False)

    def test_no_idle_shutdown_and_no_kernel_culling(self):
        site = {**SAMPLE, "idle_timeout_seconds": 0, "kernel_idle_timeout_seconds": 0, "kernel_cull_interval_seconds": 300}
        settings = self.load(site).settings
        self.assertEqual(settings["ServerApp"]["shutdown_no_activity_timeout"], 0)
        self.assertEqual(settings["MappingKernelManager"]["cull_idle_timeout"], 0)
        self.assertEqual(settings["MappingKernelManager"]["cull_interval"], 300)

    def test_kernel_extension(self):
        """With the limits' extension written, IPython kernels load it from the command line and
        find it first on PYTHONPATH; other kernels stay as they are."""
        kernels = self.folder / "kernels"
        for name, argv, env in (("py", ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], {"PYTHONPATH": "/opt/lib"}),
                                ("r", ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"], {})):
            (kernels / name).mkdir(parents=True)
            (kernels / name / "kernel.json").write_text(json.dumps({"argv": argv, "env": env, "display_name": name, "language": name}))
        extension = str(self.folder / "runtime")
        self.environment["HYDRA_KERNEL_EXTENSION"] = extension

        def probe(namespace):
            manager = namespace["c"].ServerApp.kernel_spec_manager_class(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
            return {name: (manager.get_kernel_spec(name).argv, manager.get_kernel_spec(name).env) for name in ("py", "r")}

        settings, environment, _, specs = self.load({**SAMPLE, "kernel_extension": "hydra_limits"}, probe)
        self.assertEqual(settings["ServerApp"]["kernel_spec_manager_class"], "class HydraKernelSpecManager")
        self.assertNotIn("HYDRA_KERNEL_EXTENSION", environment)  # kernels do not inherit it
        argv, env = specs["py"]
        self.assertEqual(argv[-1], "--IPKernelApp.extra_extensions=hydra_limits")
        self.assertEqual(env["PYTHONPATH"], os.pathsep.join([extension, "/opt/lib"]))
        self.assertEqual(specs["r"], (["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"], {}))

    def slurm_job(self, port_range):
        """The environment of a Slurm job's server: no socket, a port range, TLS files in the
        shared home, a runtime folder of the node's own."""
        del self.environment["HYDRA_SOCK"]
        (self.folder / "runtime").mkdir()
        for name in ("tls.key", "tls.crt"):
            (self.folder / "home" / name).write_text(name)
        self.environment.update({"HYDRA_PORT_RANGE": port_range, "JUPYTER_RUNTIME_DIR": str(self.folder / "runtime"),
                                 "HYDRA_TLS_KEY": str(self.folder / "home" / "tls.key"),
                                 "HYDRA_TLS_CERT": str(self.folder / "home" / "tls.crt"),
                                 "HYDRA_ENDPOINT_FILE": str(self.folder / "home" / "endpoint"), "SLURM_JOB_ID": "42"})

    def test_slurm_job(self):
        """A Slurm job: TCP on a free port of the range, TLS with the files moved to the node,
        authentication everywhere, and "JOB HOST PORT" reported once the port is held."""
        with socket.socket() as probe_socket:
            probe_socket.bind(("", 0))
            port = probe_socket.getsockname()[1]
        self.slurm_job(f"{port} {port}")

        def probe(namespace):
            namespace["_bind_tcp"] = lambda server: True  # Jupyter's own bind, which this test does not run
            ServerApp._bind_http_server_tcp(types.SimpleNamespace(port=port))
            return (self.folder / "home" / "endpoint").read_text()

        settings, environment, _, endpoint = self.load(probe=probe)
        server = settings["ServerApp"]
        self.assertNotIn("sock", server)
        self.assertEqual((server["ip"], server["port"], server["port_retries"]), ("0.0.0.0", port, 0))
        self.assertIs(server["allow_remote_access"], False)
        self.assertIs(server["allow_unauthenticated_access"], False)
        for setting, name in (("keyfile", "tls.key"), ("certfile", "tls.crt")):
            moved = self.folder / "runtime" / name
            self.assertEqual(server[setting], str(moved))
            self.assertEqual(moved.read_text(), name)
            self.assertEqual(moved.stat().st_mode & 0o777, 0o600)
            self.assertFalse((self.folder / "home" / name).exists())
        self.assertNotIn("HYDRA_TLS_KEY", environment)
        self.assertNotIn("HYDRA_TLS_CERT", environment)
        self.assertEqual(endpoint, f"42 {socket.gethostname()} {port}\n")
        # Same settings for every site's values: the host check and cookie as on a Unix socket.
        self.assertEqual(server["local_hostnames"], ["localhost", "jupyter.example.org"])

    def test_slurm_job_without_a_free_port(self):
        with socket.socket() as taken:
            taken.bind(("", 0))
            port = taken.getsockname()[1]
            self.slurm_job(f"{port} {port}")
            with self.assertRaisesRegex(AssertionError, f"SystemExit: hydra: no free port in {port}-{port}"):
                self.load()

    def test_log_capped(self):
        """What the server and its kernels print goes to the log, kept under log_max_bytes: past
        half of it the older half moves to <log>.1."""
        def probe(namespace):
            # One write at a time, each read by the pump before the next (a single read of more
            # than half the limit would keep only its first half).
            for turn, expected in enumerate((1000, 2000, 1000, 2000, 1000)):
                os.write(1 + turn % 2, (b"o", b"e")[turn % 2] * 1000)  # stdout "o", stderr "e"
                deadline = time.monotonic() + 10
                while (self.log.stat().st_size if self.log.exists() else 0) != expected and time.monotonic() < deadline:
                    time.sleep(0.01)
            # Found before the pipe closes: once it has, the pump may have returned already.
            pump = next(thread for thread in threading.enumerate() if thread.name == "hydra-capped-log")
            os.close(1)
            os.close(2)  # the pipe's last writer: the pump reaches the end and returns
            pump.join(10)
            return pump.is_alive()

        still_running = self.load({**SAMPLE, "log_max_bytes": 4096}, probe).probed
        self.assertFalse(still_running)
        current, older = self.log.read_bytes(), pathlib.Path(f"{self.log}.1").read_bytes()
        self.assertEqual((current, older), (b"o" * 1000, b"o" * 1000 + b"e" * 1000))

    def test_logout_leads_to_the_front(self):
        def probe(namespace):
            handler = namespace["HydraLogoutHandler"]
            calls = []
            fake = types.SimpleNamespace(identity_provider=types.SimpleNamespace(clear_login_cookie=lambda h: calls.append("clear")),
                                         redirect=lambda url: calls.append(url))
            handler.get(fake)
            return calls, getattr(handler.get, "__allow_unauthenticated", False)

        calls, public = self.load(probe=probe).probed
        self.assertEqual(calls, ["clear", "/?logged_out=1"])
        self.assertIs(public, True)

    def test_lab_pages_carry_no_token(self):
        def probe(namespace):
            namespace["_lab_handlers"] = lambda app: None  # JupyterLab's own, which needs a running server
            page = {"token": TOKEN, "baseUrl": "/user/alice/"}
            LabApp.initialize_handlers(types.SimpleNamespace(serverapp=types.SimpleNamespace(
                web_app=types.SimpleNamespace(settings={"page_config_data": page}))))
            return page

        page = self.load(probe=probe).probed
        self.assertEqual(page, {"token": "", "baseUrl": "/user/alice/"})


if __name__ == "__main__":
    unittest.main()
