"""hydra's benchmarks, run by scripts/bench inside scripts/sandbox. Prints figures, asserts nothing."""
import pathlib
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Tests/Integration"))
from hydra_site import PASSWORD, PREFIX, SITE_URL, as_web_server, sh, start_directory, start_site, stop_site  # noqa: E402


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
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
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


def main():
    directory = start_directory()
    start_site()
    try:
        add = str(PREFIX / "addldapuser")
        sh(add, "ada")
        print("\n## addldapuser (real slapd, real useradd)\n")
        print("| path | p50 | p99 | runs |\n|---|---|---|---|")
        row("already fine, direct (root)", timed(lambda: sh(add, "ada", check=False), 100))
        row("already fine, through sudo as www-data", timed(lambda: as_web_server("sudo", "-n", add, "ada"), 100))
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
    finally:
        stop_site()
        directory.stop()


main()
