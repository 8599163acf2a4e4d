"""hydra's benchmarks, run by scripts/bench inside scripts/sandbox. Prints figures, asserts nothing."""
import pathlib
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Tests/Integration"))
from hydra_site import (PASSWORD, PREFIX, SITE_URL, Browser, as_user, as_web_server, login_form,  # noqa: E402
                        refresh_mirrors, sh, start_directory, start_site, stop_site)


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(argv_runner, runs):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        argv_runner()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name, samples):
    print(f"| {name} | {statistics.median(samples):.1f} ms | {percentile(samples, 99):.1f} ms | {len(samples)} |")


def wrk(url, seconds=5, connections=16, auth=None):
    argv = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if auth:
        import base64
        argv += ["-H", "Authorization: Basic " + base64.b64encode(auth.encode()).decode()]
    out = sh(*argv, url).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def latency(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, latency(50), latency(99), int(errors.group(1)) if errors else 0


def bare_jupyter_start(name):
    """A Jupyter Server + JupyterLab started by hand as `name`, with hydra's configuration, until
    its socket answers: the floor any launcher stands on."""
    import os
    import subprocess
    home = f"/home/{name}"
    sock = f"/tmp/bare-{name}.sock"
    env = {"HOME": home, "USER": name, "PATH": "/opt/hydra/jupyter/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HYDRA_USER": name, "HYDRA_SOCK": sock, "HYDRA_TOKEN": "b" * 64, "JUPYTER_RUNTIME_DIR": f"/tmp/bare-{name}-rt"}
    config = pathlib.Path("/tmp/bare-jupyter-config.py")
    config.write_text(pathlib.Path("/home/grace/.hydra/jupyter_config.py").read_text())  # hydra's own settings
    config.chmod(0o644)
    started = time.perf_counter()
    proc = subprocess.Popen(["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "/opt/hydra/jupyter/bin/jupyter-lab",
                             f"--config={config}"], env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if time.perf_counter() - started > 60 or proc.poll() is not None:
                raise RuntimeError(f"bare Jupyter start for {name} did not answer")
            out = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock, "-H", "Authorization: token " + "b" * 64,
                     f"http://localhost/user/{name}/api/status", check=False).stdout
            if out == "200":
                return (time.perf_counter() - started) * 1000
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()
        if os.path.exists(sock):
            os.unlink(sock)


def first_visit(name):
    """A new user's first visit through Apache until /user/NAME/lab answers 200, in ms."""
    started = time.perf_counter()
    browser = Browser(name)
    while True:
        if time.perf_counter() - started > 180:
            raise RuntimeError(f"{name} never got past the starting page")
        status, _, page = browser.get("/")
        if "Starting your notebook server" not in page:
            break
        time.sleep(0.5)
    assert status == 200, page
    action, fields = login_form(page)
    status, _, _ = browser.post(action, fields)
    assert status == 302
    status, _, _ = browser.get(f"/user/{name}/lab")
    assert status == 200
    return (time.perf_counter() - started) * 1000


def mod_proxy_fcgi_site():
    """README's mod_proxy_fcgi setup on port 8083 beside the mod_fcgid site; returns the daemon."""
    import subprocess
    sh("a2enmod", "-q", "proxy_fcgi")
    auth = pathlib.Path("/etc/hydra/apache-auth.conf").read_text()
    pathlib.Path("/etc/apache2/sites-enabled/zz-bench-proxy-fcgi.conf").write_text(
        f'Listen 8083\n<VirtualHost *:8083>\n<Location "/">\n{auth}\n</Location>\n'
        'ProxyPassMatch "^/(?!user/)" "unix:/run/hydra/.front/cgi.sock|fcgi://localhost/"\n</VirtualHost>\n')
    daemon = subprocess.Popen(["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups", "--reset-env",
                               str(PREFIX / "hydra-cgi"), "--socket", "/run/hydra/.front/cgi.sock"])
    sh("apache2ctl", "graceful")
    time.sleep(1)
    return daemon


def mod_fcgid_vs_mod_proxy_fcgi():
    daemon = mod_proxy_fcgi_site()
    try:
        print("\n| /hydra/whoami (auth), 16 connections | req/s | p50 | p99 |\n|---|---|---|---|")
        for name, port in [("mod_fcgid (hydra.conf as shipped)", 80), ("mod_proxy_fcgi + hydra-cgi --socket", 8083)]:
            rps, p50, p99, _ = wrk(f"http://localhost:{port}/hydra/whoami", connections=16, auth=f"ada:{PASSWORD}")
            print(f"| {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms |")
    finally:
        daemon.terminate()
        daemon.wait()


def main():
    directory = start_directory()
    start_site()
    try:
        add = str(PREFIX / "addldapuser")
        sh(add, "ada")
        print("\n## addldapuser (real slapd, real useradd)\n")
        print("| path | p50 | p99 | runs |\n|---|---|---|---|")
        row("already fine, direct (root)", timed(lambda: sh(add, "ada", check=False), 100))
        row("already fine, through sudo as www-data", timed(lambda: as_web_server("sudo", "-n", add, "--json", "--", "ada"), 100))
        herd = iter([f"herd{i:02d}" for i in range(30)])
        row("new account from LDAP (useradd -m)", timed(lambda: sh(add, next(herd)), 20))

        print("\n## The front through Apache with mod_fcgid (wrk -t2 -d5s after a 3 s warm-up)\n")
        # A static file from a second virtual host of the same Apache, for comparison.
        pathlib.Path("/etc/apache2/sites-enabled/hydra-bench.conf").write_text(
            "Listen 8080\n<VirtualHost *:8080>\nDocumentRoot /var/www/hydra-bench\n</VirtualHost>\n")
        pathlib.Path("/var/www/hydra-bench").mkdir(parents=True, exist_ok=True)
        pathlib.Path("/var/www/hydra-bench/static.txt").write_text("hello\n")
        sh("apache2ctl", "graceful")
        time.sleep(1)
        # mod_fcgid starts its processes gradually: warm up, then measure the steady state.
        wrk(f"{SITE_URL}/hydra/whoami", seconds=3, auth=f"ada:{PASSWORD}")
        print("| target | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|")
        for connections in (4, 16):
            front = wrk(f"{SITE_URL}/hydra/whoami", connections=connections, auth=f"ada:{PASSWORD}")
            health = wrk(f"{SITE_URL}/hydra/health", connections=connections)
            static = wrk("http://localhost:8080/static.txt", connections=connections)
            for name, (rps, p50, p99, bad) in [("hydra-cgi /hydra/whoami (LDAP Basic auth)", front),
                                               ("hydra-cgi /hydra/health (no auth)", health),
                                               ("static file, same Apache (no auth)", static)]:
                print(f"| {name}, {connections} connections | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
        processes = sh("pgrep", "-c", "-f", str(PREFIX / "hydra-cgi"), check=False).stdout.strip()
        print(f"\nhydra-cgi processes started by mod_fcgid: {processes}")
        mod_fcgid_vs_mod_proxy_fcgi()

        print("\n## ipynb-launch (as the user, real git and Jupyter; issue 5)\n")
        launch = str(PREFIX / "ipynb-launch")
        refresh_mirrors()
        sh(add, "grace")
        as_user("grace", launch, "start")
        print("| path | p50 | p99 | runs |\n|---|---|---|---|")
        row("warm start (server running, mirror fresh): reuse", timed(lambda: as_user("grace", launch, "start", "--json"), 50))
        row("sync with nothing new", timed(lambda: as_user("grace", launch, "sync", "--json"), 50))
        cold, bare = [], []
        for i in range(5):
            name = f"herd{i:02d}"
            bare.append(bare_jupyter_start(name))
            cold.append(timed(lambda: as_user(name, launch, "start", "--json"), 1)[0])
            as_user(name, launch, "stop")
        print(f"\ncold start of a new home (clone + server answering), median of 5: {statistics.median(cold):.0f} ms; "
              f"bare Jupyter start with the same settings: {statistics.median(bare):.0f} ms "
              f"(+{statistics.median(cold) - statistics.median(bare):.0f} ms, ratio {statistics.median(cold) / statistics.median(bare):.2f})")

        print("\n## Visits through Apache (issue 6)\n")
        print("| target | connections | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|")
        browser = Browser("grace")
        browser.get("/")
        # One user's visits one after another: the front runs one helper per user at a time and
        # answers a second simultaneous visit of the same user with the "starting" page.
        for connections in (1,):
            warm = wrk(f"{SITE_URL}/", connections=connections, auth=f"grace:{PASSWORD}")
            hello = wrk(f"{SITE_URL}/hydra/whoami", connections=connections, auth=f"grace:{PASSWORD}")
            print(f"| warm visit: GET / (auth, sudo ipynb-launch start reuses), one user | {connections} | {warm[0]:.0f} | {warm[1]:.1f} ms | {warm[2]:.1f} ms | {warm[3]} |")
            print(f"| hello-world FastCGI (/hydra/whoami, same auth), same Apache | {connections} | {hello[0]:.0f} | {hello[1]:.2f} ms | {hello[2]:.2f} ms | {hello[3]} |")
            print(f"| ratio warm / hello p50 | {connections} | | {warm[1] / hello[1]:.1f}x | | |")
        firsts, bares = [], []
        for i in range(5, 10):
            name = f"herd{i:02d}"
            firsts.append(first_visit(name))
        for i in range(5, 10):
            bares.append(bare_jupyter_start(f"herd{i:02d}"))
        print(f"\nfirst visit of a new user until /user/NAME/lab answers 200, median of 5: {statistics.median(firsts):.0f} ms; "
              f"bare Jupyter start: {statistics.median(bares):.0f} ms (+{statistics.median(firsts) - statistics.median(bares):.0f} ms)")

        import concurrent.futures
        herd = [f"crowd{i:02d}" for i in range(30)]
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(herd)) as pool:
            results = list(pool.map(lambda n: _safe(first_visit, n), herd))
        elapsed = time.perf_counter() - started
        ok = sum(1 for r in results if isinstance(r, float))
        servers = {n: len(sh("pgrep", "-u", n, "-f", "jupyter-lab", check=False).stdout.split()) for n in herd}
        print(f"\nherd: {len(herd)} users at once (max_concurrent_starts = 4): {ok}/{len(herd)} reached their lab, "
              f"the last after {elapsed:.1f} s; users with exactly one server: {sum(1 for c in servers.values() if c == 1)}/{len(herd)}")
        failures = [r for r in results if not isinstance(r, float)]
        if failures:
            print("failures:", failures[:3])
    finally:
        stop_site()
        directory.stop()


def _safe(function, name):
    try:
        return function(name)
    except Exception as error:  # a benchmark reports, it does not stop
        return f"{name}: {error!r}"


main()
