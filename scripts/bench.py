"""hydra's benchmarks, run by scripts/bench inside scripts/sandbox with JupyterHub's environment's
Python (it brings tornado for the websocket client). Prints figures, asserts nothing.

Part 1: hydra's own figures (addldapuser, the front, ipynb-launch).
Part 2 (issue 8): hydra beside JupyterHub (behind its Node configurable-http-proxy) in the same
run, each figure alternating between the two so that the machine's noise falls on both, and
(issue 13) the same crowd of open websockets through each proxy; ends with the table of ratios
and goals.

The browser, percentiles, wrk, memory and kernel clients are the integration tests' own
(Tests/Integration: hydra_site, load_support, kernel_client, websocket_crowd), so that the
benchmarks measure what the tests check.

HYDRA_BENCH_QUICK=1: small counts, for trying the script out (figures not to be recorded).
"""
import asyncio
import hashlib
import concurrent.futures
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "Tests/Integration"))
sys.path.insert(0, str(HERE))
from hydra_site import (PASSWORD, PREFIX, SITE_URL, Browser, as_user, as_web_server, basic_auth, config_text, front_daemon_pid,  # noqa: E402
                        install_config, refresh_mirrors, reload_apache, sh, start_directory, start_site, stop_site)
from load_support import (Bystander, memory_kib, percentile, pids, pss_kib, rss_kib, visit,  # noqa: E402
                          websocket_headers, wrk)
from kernel_client import delete_kernel, run_code, start_kernel, unix_resolver  # noqa: E402
from bench_hub import HUB_ENV, HUB_LOG, HUB_PASSWORD, HUB_PORT, Hub, proxy_versions, versions  # noqa: E402

QUICK = os.environ.get("HYDRA_BENCH_QUICK") == "1"
FIGURES = {}  # figures from part 1 that the table of part 2 shows too


def count(full, quick):
    return quick if QUICK else full


# ---------------------------------------------------------------------------------------------
# Figures

def timed(argv_runner, runs):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        argv_runner()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples):
    return statistics.median(samples), percentile(samples, 0.99)


def row(name, samples):
    p50, p99 = summary(samples)
    print(f"| {name} | {p50:.1f} ms | {p99:.1f} ms | {len(samples)} |")


def wrk_ms(url, seconds=5, connections=16, auth=None, headers=()):
    """load_support's wrk as the tables show it: (req/s, p50 ms, p99 ms, non-2xx)."""
    credentials = [f"Authorization: {basic_auth(*auth)}"] if auth else []
    figures = wrk(url, connections, seconds, headers=credentials + list(headers))
    return figures["rps"], figures["latency"][50] * 1000, figures["latency"][99] * 1000, figures["non_2xx"]


def load_average():
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def mib(kib):
    return kib / 1024


# ---------------------------------------------------------------------------------------------
# Visits of either site: the test suite's Browser and visit()

class VisitFailed(Exception):
    pass


class Site:
    """One of the two sites as the benchmark sees it."""

    def __init__(self, name, port, host, password, basic, login_cookies):
        self.name, self.port, self.host, self.password, self.basic = name, port, host, password, basic
        self.login_cookies = login_cookies

    def visitor(self, user):
        """A browser of `user`'s that keeps its connection, as a browser does."""
        return Browser(user, self.password, host=self.host, port=self.port, basic=self.basic, keep_alive=True)


# The cookies a browser has lost when its Jupyter login is gone: on hydra's side also
# hydra-recent, which lives sync.visit_sync_interval_seconds (60 s) after the last visit that
# reached the front.
HYDRA = Site("hydra", 80, "localhost", PASSWORD, basic=True,
             login_cookies=lambda user: {"hydra-jupyter", "hydra-server", "hydra-recent"})
HUB = Site("JupyterHub", HUB_PORT, f"localhost:{HUB_PORT}", HUB_PASSWORD, basic=False,
           login_cookies=lambda user: {f"jupyterhub-user-{user}"})


def to_lab(browser, reloads=0):
    """From the site root to the browser's lab answering 200: (ms, requests, trace); trace has a
    (method, path without query, status, ms) for each request, and ("wait", what, "", ms) or
    ("reload", why, "", 0) for what the browser did after it. VisitFailed where it stopped short."""
    result = visit(browser, reloads=reloads)
    if not result.in_lab(browser.user):
        raise VisitFailed(f"{browser.user}: {result.trail()[-300:]}: {result.page[:200]!r}")
    trace = []
    for step in result.steps:
        trace.append((step.method, step.path.split("?")[0], step.status, step.seconds * 1000))
        if step.after:
            trace.append((step.after[0], step.after[1], "", step.after[2] * 1000))
    return result.seconds * 1000, len(result.steps), trace


def first_visit(site, user, reloads=0):
    """A new user's first visit, from the site root until /user/NAME/lab answers 200."""
    return to_lab(site.visitor(user), reloads=reloads)


def herd_visits(site, names):
    """New people's first visits all at once, from the site root to their labs: their browsers
    (name -> visitor) and each visit's to_lab() figures, or what stopped it. Each visitor reloads
    a broken page up to 3 times, as a patient person would; a visit counts as a success only
    without any reload (a browser alone does not reload)."""
    herd = {name: site.visitor(name) for name in names}
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        outcomes = list(pool.map(lambda name: _safe(to_lab, herd[name], reloads=3), names))
    return herd, outcomes


def _safe(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except Exception as error:  # a benchmark reports, it does not stop
        return f"{args[-1]}: {error!r}"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def direct_get_ms(browser, path, port=None, unix_socket=None):
    """GET `path` straight from the user's server (no proxy) with the browser's cookies, in ms."""
    connection = UnixHTTPConnection(unix_socket) if unix_socket else http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        return get_on_ms(browser, path, connection)
    finally:
        connection.close()


def get_on_ms(browser, path, connection):
    """GET `path` on an open connection to a server (no proxy) with the browser's cookies, in ms."""
    headers = {k: v for k, v in browser.headers(path).items() if k != "Authorization"}
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise VisitFailed(f"{path} straight from the server answered {response.status}")
    return (time.perf_counter() - started) * 1000


# ---------------------------------------------------------------------------------------------
# Kernel round trip over the websocket, through each proxy (kernel_client's REST and websocket)

class Route:
    """How the kernel client reaches a user's server: through the site's proxy (`port`), or
    straight to the server (a TCP port, or a Unix socket), with the same browser's cookies."""

    def __init__(self, browser, port=None, unix_socket=None):
        from tornado.simple_httpclient import SimpleAsyncHTTPClient
        self.browser, self.base = browser, f"http://127.0.0.1:{port or browser.port}"
        self.resolver = unix_resolver(unix_socket) if unix_socket else None
        self.client = SimpleAsyncHTTPClient(force_instance=True, resolver=self.resolver)
        self.prefix = f"/user/{browser.user}"

    def headers(self, xsrf=True):
        """The browser's headers for the kernels API (xsrf=False: for the websocket handshake)."""
        b = self.browser
        extra = {"Origin": b.origin}
        if xsrf:
            extra.update({"X-XSRFToken": b.cookies.value("_xsrf", self.prefix + "/"), "Content-Type": "application/json"})
        return b.headers(self.prefix + "/api/kernels", extra)


async def execute(connection, code="1+1"):
    """ms until the kernel answered `code` (1+1 must give 2)."""
    try:
        result, ms = await run_code(connection, code, user="bench")
    except ConnectionError as error:
        raise VisitFailed(str(error))
    if result != "2":
        raise VisitFailed(f"1+1 gave {result!r}")
    return ms


async def kernel_round_trips(routes, runs):
    """`runs` executions of 1+1 on each route, in turn, after 10 unmeasured ones each."""
    opened = [await start_kernel(r.client, r.base, r.prefix, r.headers(), r.headers(xsrf=False), r.resolver) for r in routes]
    samples = [[] for _ in routes]
    try:
        for i in range(runs + 10):
            k = i % len(routes)
            for side in list(range(k, len(routes))) + list(range(k)):
                ms = await execute(opened[side][2])
                if i >= 10:
                    samples[side].append(ms)
    finally:
        for route, (kernel, _, connection) in zip(routes, opened):
            connection.close()
            await delete_kernel(route.client, route.base, route.prefix, kernel, route.headers())
    return samples


def server_port(user, pattern):
    """The TCP port a user's server listens on (JupyterHub's servers; read from ss)."""
    server = pids("-u", user, "-f", pattern)[0]
    for line in sh("ss", "-ltnpH").stdout.splitlines():
        if f"pid={server}," in line:
            return int(line.split()[3].rsplit(":", 1)[1])
    raise RuntimeError(f"no listening port for {user}'s server {server}")


# ---------------------------------------------------------------------------------------------
# A class's open notebooks: the same websocket crowd through each proxy (issue 13)

CROWD = HERE.parent / "Tests/Integration/websocket_crowd.py"
CROWD_PATH = "api/events/subscribe"  # the websocket every open JupyterLab holds


def meanwhile_figures(bystander):
    """kind -> (p50 ms, p99 ms, how many) of a Bystander's visits and API calls that succeeded."""
    return {kind: (*summary([s * 1000 for s in samples]), len(samples)) if samples else (0, 0, 0)
            for kind, samples in bystander.by_kind.items()}


def proxy_memory(parts):
    """part -> (PSS in KiB, number of processes), for a dict part -> pids."""
    return {part: (memory_kib(found), len(found)) for part, found in parts.items()}


def into_labs(site, names):
    """Each of `names` visits the site from its root until their lab answers, 8 at a time (a
    visitor reloads a broken page up to 3 times); returns the browsers that got there, the
    failures, and the seconds it took."""
    def one(name):
        browser = site.visitor(name)
        to_lab(browser, reloads=3)
        return browser
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda n: _safe(one, n), names))
    return ([o for o in outcomes if isinstance(o, Browser)], [o for o in outcomes if isinstance(o, str)],
            time.perf_counter() - started)


def websocket_crowd(browsers, watcher, proxy_layer, per_person, hold):
    """`per_person` websockets to CROWD_PATH for each browser (with its credentials), through
    the browsers' site and its proxy, opened 64 at a time, held `hold` seconds and pinged every
    10 s by Tests/Integration/websocket_crowd.py, while `watcher` uses the same site (a
    Bystander). proxy_layer() names the proxy's processes (part -> pids); their PSS is taken
    before, 10 s into the hold (at most half of it), and 5 s after the crowd closed them."""
    site = browsers[0]
    spec = {"site": f"http://127.0.0.1:{site.port}", "path": CROWD_PATH, "per_person": per_person, "hold": hold, "ping": 10,
            "people": [{"user": b.user, "headers": websocket_headers(b, f"/user/{b.user}/{CROWD_PATH}")} for b in browsers]}
    result = {"before": proxy_memory(proxy_layer()), "people": len(browsers), "per_person": per_person, "hold": hold}
    started = time.perf_counter()
    crowd = subprocess.Popen([sys.executable, str(CROWD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        crowd.stdin.write(json.dumps(spec))
        crowd.stdin.close()
        line = crowd.stdout.readline()
        if not line:
            raise RuntimeError(f"websocket_crowd.py ended before opening its websockets (exit {crowd.wait(30)})")
        result["open"] = json.loads(line)
        result["open_seconds"] = time.perf_counter() - started
        with Bystander(watcher, watcher.user) as meanwhile:
            time.sleep(min(10, hold / 2))
            result["held"] = proxy_memory(proxy_layer())
            line = crowd.stdout.readline()
        result["done"] = json.loads(line) if line else {"error": f"websocket_crowd.py ended early (exit {crowd.wait(30)})"}
        result["meanwhile"], result["meanwhile_errors"] = meanwhile_figures(meanwhile), [e[:200] for e in meanwhile.errors]
    finally:
        if crowd.poll() is None:
            try:
                crowd.wait(60)
            except subprocess.TimeoutExpired:
                crowd.kill()
                crowd.wait()
    time.sleep(5)
    result["after"] = proxy_memory(proxy_layer())
    return result


def wait_until_gone(users, pattern, timeout=90):
    """Waits until none of `users` has a process matching `pattern`; returns how many still do."""
    deadline = time.monotonic() + timeout
    while True:
        left = [u for u in users if pids("-u", u, "-f", pattern)]
        if not left or time.monotonic() > deadline:
            return len(left)
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# Part 1: hydra's own figures

def bare_jupyter_start(name):
    """A Jupyter Server + JupyterLab started by hand as `name`, with hydra's configuration, until
    its socket answers: the floor any launcher stands on."""
    home = f"/home/{name}"
    sock = f"/tmp/bare-{name}.sock"
    # The token as hydra's settings take it: a file of the user's own (HYDRA_TOKEN_FILE), or
    # before that the environment (HYDRA_TOKEN).
    token_file = pathlib.Path(f"/tmp/bare-{name}.token")
    token_file.write_text("b" * 64)
    token_file.chmod(0o600)
    shutil.chown(token_file, name, name)
    # The server's log (HYDRA_LOG: hydra's settings send the output there, capped), the user's own.
    log_file = pathlib.Path(f"/tmp/bare-{name}.log")
    log_file.write_bytes(b"")
    shutil.chown(log_file, name, name)
    env = {"HOME": home, "USER": name, "PATH": "/opt/hydra/jupyter/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HYDRA_USER": name, "HYDRA_SOCK": sock, "HYDRA_TOKEN": "b" * 64, "HYDRA_TOKEN_FILE": str(token_file),
           "HYDRA_LOG": str(log_file), "JUPYTER_RUNTIME_DIR": f"/tmp/bare-{name}-rt"}
    # hydra's own settings: the Python and the site's values, which it reads beside it.
    folder = pathlib.Path("/tmp/bare-jupyter-config")
    folder.mkdir(mode=0o755, exist_ok=True)
    for file_name in ("jupyter_config.py", "jupyter_site.json"):
        (folder / file_name).write_text((pathlib.Path("/home/grace/.hydra") / file_name).read_text())
        (folder / file_name).chmod(0o644)
    config = folder / "jupyter_config.py"
    started = time.perf_counter()
    proc = subprocess.Popen(["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "/opt/hydra/jupyter/bin/jupyter-lab",
                             f"--config={config}"], env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=open(log_file, "ab"))
    try:
        while True:
            if time.perf_counter() - started > 60 or proc.poll() is not None:
                log = log_file.read_text(errors="replace")[-600:]
                raise RuntimeError(f"bare Jupyter start for {name} did not answer: {log}")
            # Asked from this process (not a curl per try, whose start would compete for the CPU).
            connection = UnixHTTPConnection(sock, timeout=5)
            try:
                connection.request("GET", f"/user/{name}/api/status", headers={"Authorization": "token " + "b" * 64})
                if connection.getresponse().status == 200:
                    return (time.perf_counter() - started) * 1000
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()
        for leftover in (sock, token_file):
            if os.path.exists(leftover):
                os.unlink(leftover)


def hydra_own_figures():
    add = str(PREFIX / "addldapuser")
    sh(add, "ada")
    print("\n## addldapuser (real slapd, real useradd)\n")
    print("| path | p50 | p99 | runs |\n|---|---|---|---|")
    row("already fine, direct (root)", timed(lambda: sh(add, "ada", check=False), count(100, 10)))
    row("already fine, through sudo as www-data", timed(lambda: as_web_server("sudo", "-n", add, "--json", "--", "ada"), count(100, 10)))
    herd = iter([f"herd{i:02d}" for i in range(20)])
    row("new account from LDAP (useradd -m)", timed(lambda: sh(add, next(herd)), count(20, 5)))

    seconds = count(4, 2)
    print(f"\n## The front through Apache (wrk -t2 -d{seconds}s after a 3 s warm-up)\n")
    # A static file from a second virtual host of the same Apache, for comparison.
    pathlib.Path("/etc/apache2/sites-enabled/hydra-bench.conf").write_text(
        "Listen 8080\n<VirtualHost *:8080>\nDocumentRoot /var/www/hydra-bench\n</VirtualHost>\n")
    pathlib.Path("/var/www/hydra-bench").mkdir(parents=True, exist_ok=True)
    pathlib.Path("/var/www/hydra-bench/static.txt").write_text("hello\n")
    sh("apache2ctl", "graceful")
    time.sleep(1)
    wrk_ms(f"{SITE_URL}/hydra/whoami", seconds=3, auth=("ada", PASSWORD))  # warm up
    print("| target | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|")
    for connections in (4, 16):
        for name, url, auth in [("hydra-cgi /hydra/whoami (LDAP Basic auth), the front daemon through mod_proxy_fcgi",
                                 f"{SITE_URL}/hydra/whoami", ("ada", PASSWORD)),
                                ("static file, same Apache (no auth)", "http://localhost:8080/static.txt", None)]:
            rps, p50, p99, bad = wrk_ms(url, seconds=seconds, connections=connections, auth=auth)
            print(f"| {name}, {connections} connections | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    time.sleep(2)
    print(f"\nthe front daemon (hydra-cgi --socket) after its runs: {mib(pss_kib(front_daemon_pid())):.1f} MiB PSS")

    print("\n## ipynb-launch (as the user, real git and Jupyter; issue 5)\n")
    launch = str(PREFIX / "ipynb-launch")
    refresh_mirrors()
    sh(add, "grace")
    as_user("grace", launch, "start")
    print("| path | p50 | p99 | runs |\n|---|---|---|---|")
    row("warm start (server running, mirror fresh): reuse", timed(lambda: as_user("grace", launch, "start", "--json"), count(50, 10)))
    row("sync with nothing new", timed(lambda: as_user("grace", launch, "sync", "--json"), count(50, 10)))


# Issue 24: two profiles, of which the person may use one (course): no choice, and the front's
# warm answer must stay as fast as on a site without [[profiles]].
TWO_PROFILES = """
[[profiles]]
name = "course"
default = true

[[profiles]]
name = "research"
groups = ["research"]
"""


def profile_figures():
    """The warm visit the front answers (hydra-recent expired; grace's server running), on the
    site without [[profiles]] and on one with two of which grace may use one, in alternating
    blocks (the front reads hydra.toml again at its first request after the file changed)."""
    launch = str(PREFIX / "ipynb-launch")
    as_user("grace", launch, "start")
    grace = HYDRA.visitor("grace")
    texts = {"without": config_text(), "with": config_text() + TWO_PROFILES}
    samples = {"without": [], "with": []}

    def front_visit():
        grace.cookies.pop("hydra-recent", None)
        return to_lab(grace)[0]
    try:
        for block in range(count(8, 2)):
            for key in ("without", "with") if block % 2 == 0 else ("with", "without"):
                install_config(text=texts[key])
                reload_apache()
                for _ in range(5):  # the first reads the new file
                    front_visit()
                samples[key] += [front_visit() for _ in range(count(25, 5))]
    finally:
        install_config(text=texts["without"])
        reload_apache()
    print("\n## Profiles (issue 24): warm visit the front answers (hydra-recent expired), alternating blocks\n")
    print("| site | p50 | p99 | runs |\n|---|---|---|---|")
    row("no [[profiles]]", samples["without"])
    row("two [[profiles]], the person may use one (no choice page)", samples["with"])
    ratio = statistics.median(samples["with"]) / statistics.median(samples["without"])
    print(f"\nwith / without, p50: {ratio:.2f}")


# Issue 26: a Slurm job's server beside a local one on the same site (two profiles), with
# slurmctld's RPCs by user (sdiag) for each part.
SLURM_PROFILES = """
[[profiles]]
name = "local"
default = true

[[profiles]]
name = "cluster"
backend = "slurm"
groups = ["cluster"]
"""
SLURM_SETTINGS = {"slurm.partition": '"hydra"', "slurm.time_limit": '"60"', "slurm.port_range": "[21000, 21999]",
                  "server.start_timeout_seconds": "60"}


def slurm_figures():
    """kathleen's server as a job on the sandbox's test cluster (scripts/slurm-cluster: two
    slurmd nodes on this machine), grace's on this machine, one site: first visit and warm
    visits (through the front, hydra-recent expired; alternating), and what each cost slurmctld."""
    from hydra_site import SlurmCluster, group_with_members, restart_gate, slurmctld_rpcs_by_user
    cluster = SlurmCluster()
    cluster.up()
    group_with_members("cluster", "kathleen")
    install_config(text=config_text(**SLURM_SETTINGS) + SLURM_PROFILES)
    restart_gate()
    reload_apache()
    launch = str(PREFIX / "ipynb-launch")
    try:
        sh(str(PREFIX / "addldapuser"), "kathleen", check=False)
        as_user("grace", launch, "start")
        visitors = {"local": HYDRA.visitor("grace"), "slurm": HYDRA.visitor("kathleen")}
        sh("sdiag", "--reset")
        # kathleen may choose either: she chooses the cluster, as on the choice page.
        began = time.perf_counter()
        _, _, page = visitors["slurm"].request("GET", "/hydra/profile")
        token = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
        visitors["slurm"].request("POST", "/hydra/profile", form={"profile": "cluster", "_xsrf": token})
        _, first_hops, _ = to_lab(visitors["slurm"])
        first_ms = (time.perf_counter() - began) * 1000
        first_rpcs = slurmctld_rpcs_by_user().get("kathleen", 0)
        floor = first_visit_floor(cluster)
        for browser in visitors.values():
            for _ in range(3):
                to_lab(browser)

        def through_front(side):
            visitors[side].cookies.pop("hydra-recent", None)
            return to_lab(visitors[side])
        runs = count(50, 10)
        samples, traces = {"local": [], "slurm": []}, {"local": [], "slurm": []}
        sh("sdiag", "--reset")
        began = time.monotonic()
        for i in range(runs):
            for side, (ms, _, trace) in zip(("local", "slurm"), alternate(i, lambda: through_front("local"), lambda: through_front("slurm"))):
                samples[side].append(ms)
                traces[side].append(trace)
        seconds = time.monotonic() - began
        warm_rpcs = slurmctld_rpcs_by_user()
        hops = lab_page_hops(visitors, runs)
    finally:
        as_user("kathleen", launch, "stop")
        install_config()
        restart_gate()
        reload_apache()
        cluster.down()
    print("\n## A Slurm job's server beside a local one (issue 26; the sandbox's test cluster)\n")
    print(f"first visit to a job (the choice posted, then to the lab): {first_ms:.0f} ms ({first_hops + 2} requests), "
          f"{first_rpcs} slurmctld RPCs as the person")
    bound = floor["bare"] + floor["slurm"] + 300
    print(f"its floor: a bare Jupyter start here {floor['bare']:.0f} ms (median of 3) + Slurm's own submit-to-RUNNING "
          f"{floor['slurm']:.0f} ms (a job that sleeps, median of 5) + 300 ms = {bound:.0f} ms; "
          f"first visit / that: {first_ms / bound:.2f}\n")
    print("| warm visit through the front (hydra-recent expired) | p50 | p99 | runs |\n|---|---|---|---|")
    row("local server (grace)", samples["local"])
    row("Slurm job (kathleen)", samples["slurm"])
    ratio = statistics.median(samples["slurm"]) / statistics.median(samples["local"])
    print(f"\nSlurm / local, p50: {ratio:.2f}; slurmctld RPCs by user over those {runs * 2} visits ({seconds:.0f} s): {warm_rpcs}")
    print("\nWhere the time goes, request by request (median ms):\n")
    for side in ("local", "slurm"):
        print(f"- {side}: {hop_breakdown(traces[side])}")
    print(f"\n| the lab page alone, {runs} times each, alternating | p50 | p99 | runs |\n|---|---|---|---|")
    for label, values in hops.items():
        row(label, values)


def slurm_herd_figures():
    """Issue 26: 30 new people at once whose servers are Slurm jobs on the sandbox's test cluster,
    on hydra's side and on JupyterHub + batchspawner's (its SlurmSpawner), with hydra's local
    herd beside them in the same run; then 5 minutes of the Slurm herds returning to their labs
    every 10 s, with what each side asked slurmctld meanwhile (sdiag's RPCs by user)."""
    from hydra_site import SlurmCluster, restart_gate, slurmctld_rpcs_by_user
    from bench_hub import SLURM_HUB_ENV, SLURM_SPAWNER
    size, seconds = count(30, 6), count(300, 30)
    local, flock, hubflock = ([f"{prefix}{i:02d}" for i in range(size)] for prefix in ("drove", "flock", "bsherd"))
    hub = Hub(env=SLURM_HUB_ENV, spawner=SLURM_SPAWNER, directory=pathlib.Path("/var/lib/bench-hub-slurm"),
              log=pathlib.Path("/var/log/bench-hub-slurm.log"))
    hub.prepare(hubflock)
    cluster = SlurmCluster()
    cluster.up()
    launch = str(PREFIX / "ipynb-launch")
    figures = {}

    def herd(side, site, names, on_slurm):
        sh("sdiag", "--reset")
        began = time.monotonic()
        browsers, outcomes = herd_visits(site, names)
        rpcs = slurmctld_rpcs_by_user()
        jobs = sh("squeue", "-h", "-o", "%u %N").stdout.split("\n") if on_slurm else []
        in_lab = [browsers[name] for name, outcome in zip(names, outcomes) if isinstance(outcome, tuple)]
        if site is HUB and len(in_lab) < len(names):
            # What the hub said about it (its log lives in the sandbox and goes with it).
            errors = [line[:300] for line in hub.log_path.read_text(errors="replace").splitlines() if line.startswith(("[E", "[C", "[W"))]
            print(f"JupyterHub + batchspawner: {len(names) - len(in_lab)} of {len(names)} not in their labs; its log's last errors:",
                  *errors[-8:], sep="\n  ")
        figures[side] = {"seconds": [o[0] / 1000 for o in outcomes if isinstance(o, tuple)], "n": len(names),
                         "failures": [o for o in outcomes if not isinstance(o, tuple)][:3], "took": time.monotonic() - began,
                         "rpcs": rpcs, "nodes": sorted({line.split(" ")[1] for line in jobs if line.split(" ")[0] in names})}
        return in_lab

    def returning(side, browsers, fresh):
        """Each of `browsers` from the site root to the lab every 10 s for `seconds`; `fresh`
        removes what would let the browser skip the site's own decision (hydra-recent)."""
        sh("sdiag", "--reset")
        deadline = time.monotonic() + seconds
        visits, failures = [], []

        def person(browser):
            while time.monotonic() < deadline:
                began = time.monotonic()
                fresh(browser)
                try:
                    visits.append(to_lab(browser)[0])
                except Exception as error:  # noqa: BLE001 (a figure, not a verdict)
                    failures.append(str(error)[:200])
                time.sleep(max(0.0, 10 - (time.monotonic() - began)))
        with concurrent.futures.ThreadPoolExecutor(len(browsers) or 1) as pool:
            list(pool.map(person, browsers))
        figures[side]["returning"] = {"visits": visits, "failures": failures[:3], "rpcs": slurmctld_rpcs_by_user()}

    try:
        herd("hydra, local servers", HYDRA, local, on_slurm=False)
        for name in local:
            as_user(name, launch, "stop")
        install_config(**{"server.backend": '"slurm"', **SLURM_SETTINGS})
        restart_gate()
        reload_apache()
        in_lab = herd("hydra, Slurm jobs", HYDRA, flock, on_slurm=True)
        returning("hydra, Slurm jobs", in_lab, lambda browser: browser.cookies.pop("hydra-recent", None))
        for name in flock:
            as_user(name, launch, "stop")
        hub.start()
        try:
            in_lab = herd("JupyterHub + batchspawner, Slurm jobs", HUB, hubflock, on_slurm=True)
            returning("JupyterHub + batchspawner, Slurm jobs", in_lab, lambda browser: None)
        finally:
            hub.stop()   # its servers are stopped with it (JupyterHub's cleanup_servers)
    finally:
        for name in flock:
            as_user(name, launch, "stop")
        install_config()
        restart_gate()
        reload_apache()
        cluster.down()
    print(f"\n## A herd of {size} new people as Slurm jobs (issue 26; the sandbox's test cluster)\n")
    print(f"JupyterHub's side: {versions(SLURM_HUB_ENV)}, batchspawner's SlurmSpawner\n")
    print("| herd, all at once | in the lab | p50 | p90 | last | slurmctld RPCs by user during it | nodes |\n|---|---|---|---|---|---|---|")
    for side, f in figures.items():
        values = f["seconds"] or [0]
        print(f"| {side} | {len(f['seconds'])}/{f['n']} | {percentile(values, 0.5):.1f} s | {percentile(values, 0.9):.1f} s | "
              f"{max(values):.1f} s | {f['rpcs']} | {', '.join(f['nodes'])} |")
    for side, f in figures.items():
        if f["failures"]:
            print(f"\n{side}: failures (first 3): {f['failures']}")
    local_p50 = percentile(figures["hydra, local servers"]["seconds"] or [1], 0.5)
    for side in ("hydra, Slurm jobs", "JupyterHub + batchspawner, Slurm jobs"):
        print(f"\n{side} / hydra's local herd, p50: {percentile(figures[side]['seconds'] or [0], 0.5) / local_p50:.2f}")
    print(f"\n| {seconds} s of each Slurm herd returning to its lab every 10 s (from the site root) | visits | p50 | p99 | slurmctld RPCs by user | per 3 s |\n|---|---|---|---|---|---|")
    for side, f in figures.items():
        back = f.get("returning")
        if back:
            values = back["visits"] or [0]
            per_3s = {user: round(n * 3 / seconds, 2) for user, n in back["rpcs"].items()}
            print(f"| {side} | {len(back['visits'])} ({len(back['failures'])} failed) | {percentile(values, 0.5):.0f} ms | "
                  f"{percentile(values, 0.99):.0f} ms | {back['rpcs']} | {per_3s} |")


def first_visit_floor(cluster):
    """What a first visit to a job cannot beat (issue 26): Jupyter's own start, by hand on this
    machine (the test cluster's nodes share its cores), and Slurm's own time from sbatch to
    RUNNING for a job that only sleeps, both in ms."""
    bare = statistics.median(bare_jupyter_start("kathleen") for _ in range(3))
    latencies = []
    for _ in range(5):
        began = time.perf_counter()
        job = cluster.submit("kathleen", "--partition=hydra", "--chdir=/home/kathleen", "--output=/dev/null", "--wrap", "exec sleep 30")
        cluster.wait_for_state(job, "RUNNING")
        latencies.append((time.perf_counter() - began) * 1000)
        sh("scancel", job)
        cluster.wait_for_state(job, "GONE")
    return {"bare": bare, "slurm": statistics.median(latencies)}


def lab_page_hops(visitors, runs):
    """The lab page of each server by every way to it: through Apache and hydra-gate (what a
    visit's last request is), and straight from the server: over the Unix socket (local), over
    a new TLS connection with its handshake, and over one kept TLS connection (the job's)."""
    address, port, pin = pathlib.Path("/run/hydra/.front/endpoints/kathleen").read_text().split()[1:4]
    kept = pinned_tls_connection(address, int(port), pin)
    ways = {
        "local: through Apache and hydra-gate": lambda: proxied_get_ms(visitors["local"], "/user/grace/lab"),
        "local: straight from the server (Unix socket, a new connection)":
            lambda: direct_get_ms(visitors["local"], "/user/grace/lab", unix_socket="/run/hydra/grace/jupyter.sock"),
        "Slurm job: through Apache and hydra-gate (the TLS connection the gate kept from her last request)":
            lambda: proxied_get_ms(visitors["slurm"], "/user/kathleen/lab"),
        "Slurm job: straight from the server, a new TLS connection (handshake and pin check)":
            lambda: fresh_pinned_get_ms(visitors["slurm"], "/user/kathleen/lab", address, int(port), pin),
        "Slurm job: straight from the server on one kept TLS connection": lambda: get_on_ms(visitors["slurm"], "/user/kathleen/lab", kept),
    }
    samples = {label: [] for label in ways}
    try:
        for i in range(runs):
            for label, ms in zip(ways, alternate(i, *ways.values())):
                samples[label].append(ms)
    finally:
        kept.close()
    return samples


def proxied_get_ms(browser, path):
    started = time.perf_counter()
    status, _, _ = browser.request("GET", path)
    if status != 200:
        raise VisitFailed(f"{path} through the proxy answered {status}")
    return (time.perf_counter() - started) * 1000


def pinned_tls_connection(address, port, pin):
    """A TLS connection to a job's server that showed the certificate `pin` names (timed by the
    caller: the handshake happens here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the pin is the check
    connection = http.client.HTTPSConnection(address, port, context=context, timeout=60)
    connection.connect()
    if hashlib.sha256(connection.sock.getpeercert(binary_form=True)).hexdigest() != pin:
        connection.close()
        raise VisitFailed(f"the server at {address}:{port} showed another certificate")
    return connection


def fresh_pinned_get_ms(browser, path, address, port, pin):
    """`get_on_ms` on a new connection to a job's server, its handshake and pin check counted."""
    started = time.perf_counter()
    connection = pinned_tls_connection(address, port, pin)
    try:
        get_on_ms(browser, path, connection)
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000


# ---------------------------------------------------------------------------------------------
# Part 2: beside JupyterHub

def alternate(i, *functions):
    """Runs the functions in turn, rotating who goes first, so neither always follows the other."""
    k = i % len(functions)
    results = [None] * len(functions)
    for j in list(range(k, len(functions))) + list(range(k)):
        results[j] = functions[j]()
    return results


def hop_breakdown(traces):
    """The requests of a visit with the median time of each, over the runs that took the most
    common path (the same sequence of requests)."""
    shapes = {}
    for trace in traces:
        shapes.setdefault(tuple((m, re.sub(r"/user/[^/]+", "/user/NAME", re.sub(r"spawn-pending/[^/]+", "spawn-pending/NAME", p)), st)
                                for m, p, st, _ in trace), []).append(trace)
    shape, same = max(shapes.items(), key=lambda kv: len(kv[1]))
    parts = [f"{m} {p} {st} {statistics.median(t[k][3] for t in same):.1f}".replace("  ", " ") for k, (m, p, st) in enumerate(shape)]
    return " → ".join(parts) + (f" ({len(same)} of {len(traces)} runs took this path)" if len(same) != len(traces) else "")


def visits_side_by_side(runs, hydra_visit, hub_visit):
    """`runs` visits of each side, alternating: {side: (p50, p99)}, {side: hops of the last
    visit}, {side: the traces}."""
    times, traces, hops = {"hydra": [], "hub": []}, {"hydra": [], "hub": []}, {}
    for i in range(runs):
        a, b = alternate(i, hydra_visit, hub_visit)
        for side, (ms, n, trace) in (("hydra", a), ("hub", b)):
            times[side].append(ms)
            traces[side].append(trace)
            hops[side] = n
    return {k: summary(v) for k, v in times.items()}, hops, traces


def side_by_side(hub):
    results = {}
    launch = str(PREFIX / "ipynb-launch")

    # First visits of new users, beside a bare Jupyter start and ipynb-launch's cold start.
    runs = count(5, 2)
    print(f"\n## First visits of new users (median of {runs}), alternating\n")
    print("| round | bare Jupyter start | ipynb-launch cold start | hydra first visit (hops) | JupyterHub first visit (hops) |\n|---|---|---|---|---|")
    bare, cold, firsts, traces = [], [], {"hydra": [], "hub": []}, {"hydra": [], "hub": []}
    for i in range(runs):
        b, c, h, j = alternate(
            i,
            lambda: bare_jupyter_start(f"herd{i:02d}"),
            lambda: (timed(lambda: as_user(f"herd{i:02d}", launch, "start", "--json"), 1)[0], as_user(f"herd{i:02d}", launch, "stop"))[0],
            lambda: first_visit(HYDRA, f"herd{20 + i:02d}"),
            lambda: first_visit(HUB, f"hubfirst{i}"))
        bare.append(b)
        cold.append(c)
        firsts["hydra"].append(h[0])
        firsts["hub"].append(j[0])
        traces["hydra"].append(h[2])
        traces["hub"].append(j[2])
        print(f"| {i + 1} | {b:.0f} ms | {c:.0f} ms | {h[0]:.0f} ms ({h[1]}) | {j[0]:.0f} ms ({j[1]}) |")
    results["bare"] = statistics.median(bare)
    results["cold"] = statistics.median(cold)
    results["first"] = {k: statistics.median(v) for k, v in firsts.items()}
    results["first_hops"] = (h[1], j[1])
    breakdowns = {"first visit": traces}

    # Warm visits: server running, user signed in.
    visitors = {"hydra": HYDRA.visitor("grace"), "hub": HUB.visitor("hubwarm")}
    for browser in visitors.values():
        for _ in range(3):
            to_lab(browser)
    runs = count(50, 10)
    results["warm"], results["warm_hops"], breakdowns["warm visit"] = visits_side_by_side(
        runs, lambda: to_lab(visitors["hydra"]), lambda: to_lab(visitors["hub"]))

    # The same, once hydra-recent has expired (more than a minute since the front last saw
    # this browser): hydra's front answers GET / (JupyterHub's visit is the same as above).
    def without_recent():
        visitors["hydra"].cookies.pop("hydra-recent", None)
        return to_lab(visitors["hydra"])
    results["front"], results["front_hops"], traces = visits_side_by_side(runs, without_recent, lambda: to_lab(visitors["hub"]))
    breakdowns["warm visit, hydra-recent expired (the front answers)"] = {"hydra": traces["hydra"]}
    # The lab page alone, straight from each server (no proxy, a new connection each time).
    hub_port = server_port("hubwarm", "jupyterhub-singleuser")
    lab_direct = {"hydra": [], "hub": []}
    for i in range(runs):
        a, b = alternate(i, lambda: direct_get_ms(visitors["hydra"], "/user/grace/lab", unix_socket="/run/hydra/grace/jupyter.sock"),
                         lambda: direct_get_ms(visitors["hub"], "/user/hubwarm/lab", port=hub_port))
        lab_direct["hydra"].append(a)
        lab_direct["hub"].append(b)
    results["lab_direct"] = {k: statistics.median(v) for k, v in lab_direct.items()}

    # Warm visits whose Jupyter login cookie is gone (expired, or a new browser session).
    def without_login(side, site):
        for name in site.login_cookies(visitors[side].user):
            visitors[side].cookies.pop(name, None)
        return to_lab(visitors[side])
    results["expired"], results["expired_hops"], breakdowns["warm visit, Jupyter login cookie gone"] = visits_side_by_side(
        runs, lambda: without_login("hydra", HYDRA), lambda: without_login("hub", HUB))
    print("\n## Warm visits (site root until the lab page answers 200), alternating\n")
    print("| visit | hydra p50 | hydra p99 | hops | JupyterHub p50 | JupyterHub p99 | hops | runs |\n|---|---|---|---|---|---|---|---|")
    for key, label in (("warm", "signed in, server running"),
                       ("front", "same, hydra-recent expired: hydra's front answers (JupyterHub: the same visit again)"),
                       ("expired", "Jupyter login cookie gone")):
        (hp50, hp99), (jp50, jp99) = results[key]["hydra"], results[key]["hub"]
        print(f"| {label} | {hp50:.1f} ms | {hp99:.1f} ms | {results[key + '_hops']['hydra']} | {jp50:.1f} ms | {jp99:.1f} ms | "
              f"{results[key + '_hops']['hub']} | {runs} |")
    print("\nWhere the time goes: each request of a visit, median over the runs (ms); user names shown as NAME.\n")
    for label, sides in breakdowns.items():
        for side, runs_traces in sides.items():
            print(f"- {label}, {'hydra' if side == 'hydra' else 'JupyterHub'}: {hop_breakdown(runs_traces)}")
    print(f"- the lab page alone, straight from the server (no proxy, new connection), median of {runs}: "
          f"hydra {results['lab_direct']['hydra']:.1f} ms (Unix socket), JupyterHub {results['lab_direct']['hub']:.1f} ms (TCP)")

    # Proxied requests: wrk on /user/NAME/api/status through Apache and through the proxy.
    seconds, rounds, connections = count(5, 2), 2, 8
    print(f"\n## Proxied requests: wrk -t2 -c{connections} -d{seconds}s on /user/NAME/api/status, {rounds} rounds alternating\n")
    print("| round | proxy | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|")
    through = {"hydra": [], "hub": [], "direct": []}
    grace, hubwarm = visitors["hydra"], visitors["hub"]
    hub_cookie = f"Cookie: {hubwarm.cookies.header('/user/hubwarm/api/status')}"
    for i in range(rounds):
        # The third: the limit, a Jupyter server alone (JupyterHub's single-user server on its
        # TCP port, which wrk can reach; hydra's listen on Unix sockets only).
        a, b, c = alternate(
            i,
            lambda: wrk_ms("http://localhost/user/grace/api/status", seconds=seconds, connections=connections, auth=("grace", PASSWORD),
                           headers=[f"Cookie: {grace.cookies.header('/user/grace/api/status')}"]),
            lambda: wrk_ms(f"http://127.0.0.1:{HUB_PORT}/user/hubwarm/api/status", seconds=seconds, connections=connections,
                           headers=[hub_cookie]),
            lambda: wrk_ms(f"http://127.0.0.1:{server_port('hubwarm', 'jupyterhub-singleuser')}/user/hubwarm/api/status",
                           seconds=seconds, connections=connections, headers=[hub_cookie]))
        through["hydra"].append(a)
        through["hub"].append(b)
        through["direct"].append(c)
        for name, (rps, p50, p99, bad) in (("Apache (mod_proxy) + hydra-gate", a), ("configurable-http-proxy (node)", b),
                                           ("none: the Jupyter server alone", c)):
            print(f"| {i + 1} | {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    results["throughput"] = {k: (statistics.mean(r[0] for r in v), statistics.mean(r[1] for r in v),
                                 max(r[2] for r in v), sum(r[3] for r in v)) for k, v in through.items()}

    # Kernel round trip over the websocket through each proxy.
    runs = count(200, 20)

    async def round_trips():
        routes = [Route(grace), Route(hubwarm), Route(grace, unix_socket="/run/hydra/grace/jupyter.sock"),
                  Route(hubwarm, port=server_port("hubwarm", "jupyterhub-singleuser"))]
        return await kernel_round_trips(routes, runs)
    hydra_rt, hub_rt, hydra_direct, hub_direct = asyncio.run(round_trips())
    results["kernel"] = {"hydra": summary(hydra_rt), "hub": summary(hub_rt),
                         "hydra_direct": summary(hydra_direct), "hub_direct": summary(hub_direct)}
    results["kernel_runs"] = runs

    # Herds: 30 new users at once, one site after the other.
    size = count(30, 8)
    results["herd"] = {}
    herd_in_lab = {}  # side -> the herd's visitors who reached their lab (the class below reuses them)
    for side, site, names in (("hydra", HYDRA, [f"crowd{i:02d}" for i in range(size)]),
                              ("hub", HUB, [f"hubherd{i:02d}" for i in range(size)])):
        herd, outcomes = herd_visits(site, names)
        herd_in_lab[side] = [herd[n] for n, o in zip(names, outcomes) if isinstance(o, tuple)]
        if side == "hydra":
            front_burst = pss_kib(front_daemon_pid())  # the front right after its herd
        reached = [o for o in outcomes if isinstance(o, tuple)]
        strict = [o for o in reached if not any(t[0] == "reload" for t in o[2])]
        pattern = "jupyter-lab" if side == "hydra" else "jupyterhub-singleuser"
        one_server = sum(1 for n in names if len(pids("-u", n, "-f", pattern)) == 1)
        reasons = sorted({re.sub(r"(/user/|users/|spawn-pending/)[^/ :]+", r"\1NAME", t[1]) for o in reached for t in o[2] if t[0] == "reload"})
        failures = [o for o in outcomes if not isinstance(o, tuple)]
        results["herd"][side] = {
            "ok": len(strict), "n": size, "patient": len(reached),
            "last": max((o[0] for o in strict), default=0) / 1000,
            "last_patient": max((o[0] for o in reached), default=0) / 1000,
            "one_server": one_server, "failures": failures, "reasons": reasons}
        if side == "hub" and (failures or one_server != size):
            # What the hub said about it (its log lives in the sandbox and goes with it).
            errors = [line for line in HUB_LOG.read_text(errors="replace").splitlines()
                      if line.startswith(("[E", "[C")) and "custom error page" not in line and "/hub/health" not in line]
            errors = [e for e in errors if " 503 " not in e][-6:] + [e for e in errors if " 503 " in e][-2:]  # the proxy's 503s last
            results["herd"][side]["hub_errors"] = [re.sub(r"_xsrf=[^ &]+", "_xsrf=...", e)[:300] for e in errors]
        time.sleep(2)

    # Memory at rest: every user above still has a running server.
    time.sleep(5)
    apache = pids("-x", "apache2")
    apache_pss = (memory_kib(apache), len(apache))
    hub_pids = hub.pids()
    hydra_users = [f"crowd{i:02d}" for i in range(size)] + [f"herd{20 + i:02d}" for i in range(count(5, 2))] + ["grace"]
    hub_users = [f"hubherd{i:02d}" for i in range(size)] + [f"hubfirst{i}" for i in range(count(5, 2))] + ["hubwarm"]

    def per_user(users, pattern):
        pss, rss = [], []
        for user in users:
            found = pids("-u", user, "-f", pattern)
            if found:
                pss.append(memory_kib(found))
                rss.append(sum(rss_kib(p) for p in found))
        return (statistics.median(pss), len(pss), statistics.median(rss)) if pss else (0, 0, 0)
    results["memory"] = {
        "front_burst": front_burst,
        "front": pss_kib(front_daemon_pid()),
        "apache": apache_pss,
        "gate": memory_kib(pids("-f", str(PREFIX / "hydra-gate"))),
        "hub": (memory_kib(hub_pids), len(hub_pids)),
        "hub_only": pss_kib(hub_pids[0]) if hub_pids else 0,
        "user_hydra": per_user(hydra_users, "jupyter-lab"),
        "user_hub": per_user(hub_users, "jupyterhub-singleuser"),
    }

    # A class returning at once (after a break: hydra-recent has expired, their servers run):
    # the herd's people, all from the site root to their lab at the same moment, one site after
    # the other.
    results["return"] = {side: class_returning(herd_in_lab[side], side == "hydra") for side in ("hydra", "hub")}

    # A class's open notebooks, the same load through each proxy, one site after the other,
    # last (so that no figure above is measured beside it): the herd's people, and new ones to
    # make up the class, in their labs; then per_person websockets each, held and pinged, while
    # another person (the warm visitor above) visits and calls the API; then the class's
    # servers are stopped.
    people, per_person, hold, returning = count(50, 5), count(20, 4), count(60, 10), count(100, 8)
    hub_pids = hub.pids()
    sides = (("hydra", HYDRA, "class", grace, "jupyter-lab",
              lambda: {"Apache": pids("-x", "apache2"), "hydra-gate": pids("-f", str(PREFIX / "hydra-gate"))},
              lambda name: as_user(name, launch, "stop")),
             ("hub", HUB, "hubclass", hubwarm, "jupyterhub-singleuser",
              lambda: {"hub": hub_pids[:1], "configurable-http-proxy (node)": hub_pids[1:]},
              hub.stop_server))
    results["crowd"], results["return_class"] = {}, {}
    for side, site, prefix, watcher, pattern, proxy_layer, stop in sides:
        from_herd = herd_in_lab[side][:people]
        more = [f"{prefix}{i:02d}" for i in range(people - len(from_herd))]
        in_lab, failures, seconds = into_labs(site, more)
        in_lab = from_herd + in_lab
        try:
            crowd = websocket_crowd(in_lab, watcher, proxy_layer, per_person, hold) if in_lab else {"error": "nobody reached the lab"}
        except Exception as error:  # a benchmark reports, it does not stop
            crowd = {"error": repr(error)}
        crowd.update({"names": people, "from_herd": len(from_herd), "more": len(more), "in_lab": len(in_lab),
                      "lab_failures": failures, "lab_seconds": seconds, "per_person": per_person, "hold": hold})
        # A whole class returning at once: the crowd's people and more to make `returning`, each
        # in their lab first, then all from the site root at the same moment.
        extra = [f"{prefix}{i:02d}" for i in range(len(more), len(more) + max(0, returning - len(in_lab)))]
        extra_in_lab, extra_failures, _ = into_labs(site, extra)
        results["return_class"][side] = class_returning(in_lab + extra_in_lab, side == "hydra")
        results["return_class"][side]["failures"] += extra_failures[:3]
        started = time.perf_counter()
        names = [v.user for v in from_herd] + more + extra
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(stop, names))
        crowd["still_running"] = wait_until_gone(names, pattern)
        crowd["stop_seconds"] = time.perf_counter() - started
        results["crowd"][side] = crowd
    print_crowd(results["crowd"])
    return results


def class_returning(browsers, expire_recent):
    """Every browser visits from the site root to its lab at the same moment (a barrier):
    {"n", "ok", "p50", "p99", "max" (ms), "failures"}."""
    if not browsers:
        return {"n": 0, "ok": 0, "p50": 0, "p99": 0, "max": 0, "failures": ["nobody reached the lab in the herd"]}
    barrier = threading.Barrier(len(browsers))

    def back(browser):
        if expire_recent:
            browser.cookies.pop("hydra-recent", None)
        barrier.wait()
        return to_lab(browser)[0]
    with concurrent.futures.ThreadPoolExecutor(len(browsers)) as pool:
        outcomes = list(pool.map(lambda b: _safe(back, b), browsers))
    times = [o for o in outcomes if isinstance(o, float)]
    return {"n": len(browsers), "ok": len(times), "p50": statistics.median(times) if times else 0,
            "p99": percentile(times, 0.99) if times else 0, "max": max(times, default=0),
            "failures": [o[:160] for o in outcomes if isinstance(o, str)]}


def crowd_memory(parts):
    """"Apache 20.1 MiB (9) + hydra-gate 6.0 MiB (1)": PSS and number of processes of each part."""
    return " + ".join(f"{part} {mib(kib):.1f} MiB ({n})" for part, (kib, n) in parts.items())


def print_crowd(crowds):
    """The websocket crowd's figures for both sides, as a table."""
    any_side = next(iter(crowds.values()))
    print(f"\n## A class's open notebooks: {any_side['names']} people x {any_side['per_person']} websockets ({CROWD_PATH}) "
          f"held {any_side['hold']} s, through each proxy, one site after the other\n")
    print("| figure | hydra (Apache + hydra-gate) | JupyterHub (configurable-http-proxy, node) |\n|---|---|---|")
    cells = {}
    for side, c in crowds.items():
        opened, done = c.get("open", {}), c.get("done", {})
        total = c["in_lab"] * c.get("per_person", 0)
        watch = c.get("meanwhile", {})
        before, held = c.get("before", {}), c.get("held", {})
        growth = sum(k for k, _ in held.values()) - sum(k for k, _ in before.values())
        cells[side] = [
            f"{c['in_lab']}/{c['names']}: {c['from_herd']} from the herd, {c['more']} more in {c['lab_seconds']:.0f} s"
            + (f"; {len(c['lab_failures'])} failed" if c["lab_failures"] else ""),
            f"{opened.get('opened', 0)}/{total}" + (f" ({opened['failed_count']} failed)" if opened.get("failed_count") else ""),
            f"{c['open_seconds']:.1f} s; one handshake p50 {opened['connect_p50'] * 1000:.0f} ms, slowest {opened['connect_max'] * 1000:.0f} ms"
            if opened.get("connect_p50") is not None else "-",
            f"{done.get('open_at_end', 0)} / {done.get('answered_pings', 0)} ({done.get('pings', 0)} pings, {done.get('pongs', 0)} pongs)",
            crowd_memory(before) if before else "-",
            (crowd_memory(held) + f"; +{mib(growth):.1f} MiB, {growth / max(1, opened.get('opened', 0)):.0f} KiB per websocket") if held else "-",
            crowd_memory(c["after"]) if c.get("after") else "-",
            (f"{watch['visit'][0]:.1f} / {watch['visit'][1]:.1f} ms ({watch['visit'][2]})" if watch else "-"),
            (f"{watch['api'][0]:.1f} / {watch['api'][1]:.1f} ms ({watch['api'][2]})" if watch else "-"),
            str(len(c.get("meanwhile_errors", []))) + (f": {c['meanwhile_errors'][:2]}" if c.get("meanwhile_errors") else ""),
            f"{c['stop_seconds']:.1f} s; still running after: {c['still_running']}",
        ]
    labels = ["people in their labs first (the herd's, then first visits 8 at a time)", "websockets opened (64 handshakes at once)",
              "time to open them all (with the client's start)", "open at the end / answered a ping",
              "proxy layer before, PSS (processes)", "proxy layer with them open, PSS (processes)",
              "proxy layer 5 s after they closed, PSS (processes)",
              "another person meanwhile: warm visit p50 / p99 (n)", "another person meanwhile: GET api/status p50 / p99 (n)",
              "another person's errors meanwhile", "their servers stopped in"]
    for k, label in enumerate(labels):
        print(f"| {label} | {cells.get('hydra', ['-'] * len(labels))[k]} | {cells.get('hub', ['-'] * len(labels))[k]} |")
    for side, c in crowds.items():
        name = "hydra" if side == "hydra" else "JupyterHub"
        for what in ([c["error"]] if "error" in c else []) + c.get("open", {}).get("failed", [])[:3] \
                + c.get("done", {}).get("closed_early", [])[:3] + c["lab_failures"][:3]:
            print(f"- {name}: {str(what)[:300]}")


def verdict(ok):
    return "**met**" if ok else "**not met**"


def print_table(r):
    h, j = "hydra", "hub"
    print(f"\n## hydra beside JupyterHub, same run (load average now {load_average()})\n")
    print("| figure | hydra | JupyterHub | hydra/JupyterHub | goal |\n|---|---|---|---|---|")
    first_h, first_j = r["first"][h], r["first"][j]
    print(f"| first visit of a new user until /user/NAME/lab is 200, median of {count(5, 2)} "
          f"(bare Jupyter start: {r['bare']:.0f} ms) | {first_h:.0f} ms ({first_h - r['bare']:+.0f} ms vs bare; "
          f"{r['first_hops'][0]} hops) | {first_j:.0f} ms ({first_j - r['bare']:+.0f} ms vs bare; {r['first_hops'][1]} hops) | "
          f"{first_h / first_j:.2f} | within 300 ms of bare: {verdict(first_h - r['bare'] <= 300)} |")
    for key, label, goal in (("warm", "warm visit, site root until the lab is 200", True),
                             ("front", "warm visit, hydra-recent expired: hydra's front answers (JupyterHub: the same visit)", False),
                             ("expired", "warm visit, Jupyter login cookie gone", False)):
        (hp50, hp99), (jp50, jp99) = r[key][h], r[key][j]
        goal_text = f"p50 at most 1/3: {verdict(hp50 <= jp50 / 3)}" if goal else "(none)"
        print(f"| {label}, p50 of {count(50, 10)} | {hp50:.1f} ms ({r[key + '_hops'][h]} hops) | {jp50:.1f} ms "
              f"({r[key + '_hops'][j]} hops) | {hp50 / jp50:.2f} | {goal_text} |")
        print(f"| {label}, p99 of {count(50, 10)} | {hp99:.1f} ms | {jp99:.1f} ms | {hp99 / jp99:.2f} | "
              f"{'p99 at most 1/3: ' + verdict(hp99 <= jp99 / 3) if goal else '(none)'} |")
    (hr, hp50, hp99, hbad), (jr, jp50, jp99, jbad) = r["throughput"][h], r["throughput"][j]
    print(f"| proxied GET /user/NAME/api/status, req/s (wrk, 8 connections) | {hr:.0f} ({hbad} non-2xx) | {jr:.0f} ({jbad} non-2xx) | "
          f"{hr / jr:.2f} | at least JupyterHub's: {verdict(hr >= jr)} |")
    print(f"| same, latency p50 / p99 | {hp50:.2f} / {hp99:.2f} ms | {jp50:.2f} / {jp99:.2f} ms | {hp50 / jp50:.2f} / {hp99 / jp99:.2f} | |")
    dr, _, _, dbad = r["throughput"]["direct"]
    print(f"| same, the limit: a Jupyter server alone, no proxy (JupyterHub's single-user server on its port), req/s ({dbad} non-2xx) | "
          f"{hr / dr:.2f} of it | {jr / dr:.2f} of it | {dr:.0f} req/s | 1.5x JupyterHub's needs {1.5 * jr / dr:.2f} of it |")
    (kh, kh99), (kj, kj99) = r["kernel"][h], r["kernel"][j]
    print(f"| kernel round trip, 1+1 over the websocket, median of {r['kernel_runs']} (p99) | {kh:.2f} ms ({kh99:.2f}) | "
          f"{kj:.2f} ms ({kj99:.2f}) | {kh / kj:.2f} | at most JupyterHub's time: {verdict(kh <= kj)} |")
    (dh, dh99), (dj, dj99) = r["kernel"]["hydra_direct"], r["kernel"]["hub_direct"]
    print(f"| same, straight to the server, no proxy (p99) | {dh:.2f} ms ({dh99:.2f}) | {dj:.2f} ms ({dj99:.2f}) | {dh / dj:.2f} | |")
    ch, cj = r["crowd"].get(h, {}), r["crowd"].get(j, {})

    def crowd_cell(c, text):
        try:
            return text(c)
        except (KeyError, TypeError, IndexError, ZeroDivisionError):
            return "(not measured: " + str(c.get("error", "see above"))[:80] + ")"
    n = ch.get("in_lab", 0) * ch.get("per_person", 0)
    label = f"{ch.get('names', 0) * ch.get('per_person', 0)} websockets from {ch.get('names', 0)} people held {ch.get('hold', 0)} s"
    ok = crowd_cell(ch, lambda c: c["done"]["open_at_end"] == n == c["done"]["answered_pings"] and n == c["names"] * c["per_person"])
    print(f"| {label}: open at the end / answered a ping | "
          + crowd_cell(ch, lambda c: f"{c['done']['open_at_end']} / {c['done']['answered_pings']}") + " | "
          + crowd_cell(cj, lambda c: f"{c['done']['open_at_end']} / {c['done']['answered_pings']}") + " | | "
          + f"all of them: {verdict(ok is True)} |")
    print("| same: time to open them all | " + crowd_cell(ch, lambda c: f"{c['open_seconds']:.1f} s") + " | "
          + crowd_cell(cj, lambda c: f"{c['open_seconds']:.1f} s") + " | "
          + crowd_cell(ch, lambda c: f"{c['open_seconds'] / cj['open_seconds']:.2f}") + " | (none) |")

    def layer(c):
        return sum(k for k, _ in c["held"].values())
    print("| same: the proxy layer's memory with them open, PSS: Apache + hydra-gate vs hub + configurable-http-proxy | "
          + crowd_cell(ch, lambda c: f"{mib(layer(c)):.1f} MiB") + " | " + crowd_cell(cj, lambda c: f"{mib(layer(c)):.1f} MiB") + " | "
          + crowd_cell(ch, lambda c: f"{layer(c) / layer(cj):.2f}") + " | (none) |")
    for kind, what in (("visit", "warm visit"), ("api", "GET api/status")):
        fast = crowd_cell(ch, lambda c: c["meanwhile"][kind][1] <= 250 and not c["meanwhile_errors"] and c["meanwhile"][kind][2] > 0)
        print(f"| same: another person's {what} meanwhile, p50 / p99 (errors) | "
              + crowd_cell(ch, lambda c: f"{c['meanwhile'][kind][0]:.1f} / {c['meanwhile'][kind][1]:.1f} ms ({len(c['meanwhile_errors'])})") + " | "
              + crowd_cell(cj, lambda c: f"{c['meanwhile'][kind][0]:.1f} / {c['meanwhile'][kind][1]:.1f} ms ({len(c['meanwhile_errors'])})") + " | "
              + crowd_cell(ch, lambda c: f"{c['meanwhile'][kind][1] / cj['meanwhile'][kind][1]:.2f} (p99)") + " | "
              + f"p99 at most 250 ms, no error: {verdict(fast is True)} |")
    hh, jh = r["herd"][h], r["herd"][j]
    print(f"| herd of {hh['n']} new users at once: reached their lab with no reload; the last after | {hh['ok']}/{hh['n']}, {hh['last']:.1f} s | "
          f"{jh['ok']}/{jh['n']}, {jh['last']:.1f} s | {hh['last'] / max(0.001, jh['last']):.2f} (time) | {hh['n']}/{hh['n']}: {verdict(hh['ok'] == hh['n'])} |")
    print(f"| same, counting visitors who reloaded a broken page (at most 3 times, 2 s later); the last after | "
          f"{hh['patient']}/{hh['n']}, {hh['last_patient']:.1f} s | {jh['patient']}/{jh['n']}, {jh['last_patient']:.1f} s | "
          f"{hh['last_patient'] / max(0.001, jh['last_patient']):.2f} (time) | (none) |")
    for key, who in (("return", "the herd's"), ("return_class", "a class of")):
        if key not in r:
            continue
        hb, jb = r[key][h], r[key][j]
        print(f"| {who} {hb['n']} / {jb['n']} returning at once (hydra-recent expired: the front answers each), site root to the lab: "
              f"in their lab, p50 / p99 / slowest | {hb['ok']}/{hb['n']}, {hb['p50']:.0f} / {hb['p99']:.0f} / {hb['max']:.0f} ms | "
              f"{jb['ok']}/{jb['n']}, {jb['p50']:.0f} / {jb['p99']:.0f} / {jb['max']:.0f} ms | {hb['p99'] / max(0.001, jb['p99']):.2f} (p99) | "
              f"all, p99 at most 100 ms: {verdict(hb['ok'] == hb['n'] and hb['p99'] <= 100)} |")
        for side, label in ((h, "hydra"), (j, "JupyterHub")):
            if r[key][side]["failures"]:
                print(f"| {label}'s returning class: failures | {r[key][side]['failures'][:3]} | | | |")
    m = r["memory"]
    print(f"| memory right after the herd (PSS): the front daemon vs hub + proxy | "
          f"{mib(m['front_burst']):.1f} MiB | {mib(m['hub'][0]):.1f} MiB | {m['front_burst'] / m['hub'][0]:.2f} | (none) |")
    print(f"| memory at rest (PSS): the front daemon vs hub + proxy | {mib(m['front']):.1f} MiB | "
          f"{mib(m['hub'][0]):.1f} MiB (hub {mib(m['hub_only']):.1f}) | {m['front'] / m['hub'][0]:.2f} | "
          f"at most 1/5: {verdict(m['front'] * 5 <= m['hub'][0])} |")
    everything = m['front'] + m['apache'][0] + m['gate']
    print(f"| memory at rest (PSS): the front + Apache ({m['apache'][1]} apache2) + hydra-gate ({mib(m['gate']):.1f} MiB) vs hub + proxy | "
          f"{mib(everything):.1f} MiB | {mib(m['hub'][0]):.1f} MiB | {everything / m['hub'][0]:.2f} | (none) |")
    print(f"| memory per user server at rest, PSS (RSS), median of {m['user_hydra'][1]} / {m['user_hub'][1]} | "
          f"{mib(m['user_hydra'][0]):.1f} MiB ({mib(m['user_hydra'][2]):.1f}) | {mib(m['user_hub'][0]):.1f} MiB ({mib(m['user_hub'][2]):.1f}) | "
          f"{m['user_hydra'][0] / m['user_hub'][0]:.2f} | (none) |")
    print()
    for side in (h, j):
        herd = r["herd"][side]
        name = "hydra" if side == h else "JupyterHub"
        print(f"- {name} herd: users with exactly one server afterwards: {herd['one_server']}/{herd['n']}"
              + (f"; why visitors reloaded: {'; '.join(herd['reasons'][:3])}" if herd["reasons"] else "")
              + (f"; failures ({len(herd['failures'])}): {[f[:160] for f in herd['failures'][:3]]}" if herd["failures"] else ""))
        for line in herd.get("hub_errors", []):
            print(f"  - hub log: {line}")


def one_part(figures):
    """HYDRA_BENCH_ONLY=profiles or slurm: that part's figures alone (no JupyterHub)."""
    directory = start_directory()
    start_site()
    try:
        sh(str(PREFIX / "addldapuser"), "grace")
        figures()
    finally:
        stop_site()
        directory.stop()


def main():
    only = {"profiles": profile_figures, "slurm": slurm_figures, "slurm-herd": slurm_herd_figures}.get(os.environ.get("HYDRA_BENCH_ONLY", ""))
    if only:
        return one_part(only)
    began = time.perf_counter()
    apache = sh("apache2ctl", "-v", check=False).stdout.split("\n")[0].split(": ")[-1]
    print(f"# versions: hydra's users' env {versions(pathlib.Path('/opt/hydra/jupyter'))}; "
          f"JupyterHub's env {versions(HUB_ENV)}; JupyterHub's proxy {proxy_versions()}; {apache}")
    hub_users = (["hubwarm"] + [f"hubfirst{i}" for i in range(5)] + [f"hubherd{i:02d}" for i in range(30)]
                 + [f"hubclass{i:02d}" for i in range(50)])
    hub = Hub()
    directory = start_directory()
    start_site()
    try:
        hub.prepare(hub_users)
        hub.start()
        hydra_own_figures()
        profile_figures()
        slurm_figures()
        results = side_by_side(hub)
        print_table(results)
        hub.stop()
        slurm_herd_figures()   # JupyterHub + batchspawner on the same ports: after the first hub
        print(f"\nbenchmark time: {time.perf_counter() - began:.0f} s")
    finally:
        hub.stop()
        stop_site()
        directory.stop()


if __name__ == "__main__":
    main()
