"""What test_faults.py and test_load.py share: a user agent that goes from the site's root to
the user's JupyterLab the way a browser does, the user's own things in the lab (files,
notebooks, a kernel), Apache's error logs as the admin reads them, the processes and
descriptors of the site, and the figures files.

The user agent asserts nothing about how the front gets the browser to the lab (an auto-login
page that posts the token, a 302 straight to /user/NAME/lab for a returning browser, a
"starting" page that reloads itself): it follows all of them, as a browser would, and reports
where it ended up.
"""
import dataclasses
import html
import http.client
import json
import os
import pathlib
import pwd
import re
import threading
import time
import urllib.parse

from hydra_site import ARTIFACTS, FRONT_LOG, PASSWORD, PREFIX, REPO, Browser, Form, as_user, sh, wait_for

LAUNCH = PREFIX / "ipynb-launch"
# Apache's logs, the front's and hydra-gate's (where systemd is not PID 1).
ERROR_LOGS = (pathlib.Path("/var/log/apache2/error.log"), pathlib.Path("/var/log/apache2/hydra-error.log"),
              FRONT_LOG, pathlib.Path("/var/log/hydra/gate.log"))
KERNEL_ROUNDTRIP = REPO / "Tests/Integration/kernel_roundtrip.py"
JUPYTER_PYTHON = "/opt/hydra/jupyter/bin/python"
# What must never reach a user's page: a trace, a Swift or Python crash, a raw helper message.
NOT_FOR_USERS = re.compile(r"Traceback|Fatal error|Stack dump|\.swift:\d+|exit status|ipynb-launch|addldapuser|sudo", re.I)


# --- the user agent ---------------------------------------------------------------------------

@dataclasses.dataclass
class Step:
    method: str
    path: str
    status: int
    title: str
    seconds: float
    after: tuple = None  # what the browser did next, if not at once: ("wait" or "reload", why, seconds)


@dataclasses.dataclass
class Visit:
    """Where a visit ended: the last answer, and every step on the way."""
    status: int
    headers: dict
    page: str
    path: str
    steps: list
    seconds: float

    @property
    def title(self):
        return title_of(self.page)

    def in_lab(self, user):
        return (self.status == 200 and self.path.split("?")[0] == f"/user/{user}/lab"
                and "JupyterLab" in self.page and "<title>" in self.page)

    def trail(self):
        return " -> ".join(f"{s.method} {s.path} {s.status} {s.title!r}" for s in self.steps)


def title_of(page):
    match = re.search(r"<title>(.*?)</title>", page, re.S)
    return match.group(1).strip() if match else page.strip()[:80]


def browser_for(user, password=PASSWORD):
    """A new browser of `user`'s (no cookies yet), signing in with Basic auth."""
    return Browser(user, password)


def visit(browser, path="/", max_steps=80, patience=240.0, reloads=0):
    """A browser's visit: GET path, then follow redirects, sign in on a sign-in page (hydra's
    auto-login form submits itself; JupyterHub's is filled in with the name and password), read
    a page's progress EventSource until it says ready and reload the page, as its script does
    (JupyterHub's spawn-pending page), obey a page's Refresh (hydra's "starting" page), until an
    answer that is none of those, or `patience` seconds (a Refresh loop that never ends counts as
    where it ended). reloads: how many times the visitor, like a patient person, reloads a page
    2 s after it answered 502/503/504 or its progress events broke off; with 0, the visit ends
    there, as a browser alone would."""
    started = time.monotonic()
    steps = []
    method, form, reloaded = "GET", None, 0

    def reloading(step, why):
        """Whether the visitor reloads the page (2 s later): while they have reloads left."""
        nonlocal reloaded
        if reloaded >= reloads:
            return False
        reloaded += 1
        step.after = ("reload", why, 0.0)
        time.sleep(2)
        return True
    for _ in range(max_steps):
        t0 = time.monotonic()
        status, headers, page = browser.request(method, path, form=form)
        step = Step(method, path, status, title_of(page), time.monotonic() - t0)
        steps.append(step)
        lower = {k.lower(): v for k, v in headers.items()}
        if status in (301, 302, 303, 307, 308) and "location" in lower:
            path = local_path(browser, lower["location"], path)
            if status in (301, 302, 303):
                method, form = "GET", None
            continue
        if status in (502, 503, 504) and method == "GET" and reloading(step, f"GET {path.split('?')[0]} answered {status}"):
            continue
        if status != 200:
            break
        progress = re.search(r'new EventSource\("([^"]+)"\)', page)
        sign_in = Form(page)
        waited = time.monotonic()
        method, form = "GET", None
        if progress:
            try:
                browser.wait_for_progress(html.unescape(progress.group(1)))
            except (OSError, http.client.HTTPException) as error:
                if reloading(step, f"progress events of {path.split('?')[0]} broke off: {error}"):
                    continue
                break
            step.after = ("wait", "progress events", time.monotonic() - waited)
            continue
        # hydra's auto-login form, or a page asking for a name and a password (JupyterHub's; not
        # Jupyter's own login page, which asks for a token: a visit that reaches it ends there).
        asks = " ".join(sign_in.visible)
        if sign_in.action is not None and (sign_in.id == "login" or "user" in asks and "pass" in asks):
            form = dict(sign_in.hidden)
            for name in sign_in.visible:
                form[name] = browser.user if "user" in name else browser.password if "pass" in name else ""
            path, method = local_path(browser, sign_in.action, path), "POST"
            continue
        if "refresh" in lower and time.monotonic() - started < patience:
            delay, _, target = lower["refresh"].partition(";")
            time.sleep(min(float(delay or 1), 5))
            step.after = ("wait", "Refresh", time.monotonic() - waited)
            target = target.strip()
            if target.lower().startswith("url="):
                path = local_path(browser, target[4:], path)
            continue
        break
    return Visit(status, headers, page, path, steps, time.monotonic() - started)


def local_path(browser, location, current="/"):
    """Where a redirect, a form or a Refresh leads from `current`, as a path on the browser's site."""
    parts = urllib.parse.urlsplit(urllib.parse.urljoin(browser.origin + current, location))
    assert parts.netloc == browser.host, f"redirect off the site: {location}"
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def assert_in_lab(result, user):
    assert result.in_lab(user), f"{user} did not reach the lab: {result.trail()}\n{result.page[:1500]}"


def assert_clear_page(result, status, *texts):
    """The user got `status` and a page that says `texts`, without a trace or an internal name."""
    assert result.status == status, f"expected {status}: {result.trail()}\n{result.page[:1500]}"
    for text in texts:
        assert text in result.page, f"{text!r} not in the page: {result.page[:1500]}"
    visible = re.sub(r"<[^>]+>", " ", result.page)
    assert not NOT_FOR_USERS.search(visible), f"internal detail shown to the user: {visible[:1500]}"


# --- the user's things in the lab ------------------------------------------------------------

def xsrf_headers(browser, user):
    return {"X-XSRFToken": browser.cookies.value("_xsrf", f"/user/{user}/") or "", "Content-Type": "application/json",
            "Origin": browser.origin, "Referer": f"{browser.origin}/user/{user}/lab"}


def api(browser, user, method, path, body=None):
    """The Jupyter REST API through the site's proxy, with the browser's cookies (as the lab's
    scripts do; an Accept without text/html, so the gate never takes it for a page visit)."""
    status, _, text = browser.request(method, f"/user/{user}/api/{path}", body=None if body is None else json.dumps(body),
                                      headers={**xsrf_headers(browser, user), "Accept": "*/*"})
    return status, text


def websocket_headers(browser, path):
    """A websocket handshake's headers from the browser's page at `path`: credentials, cookies
    and the page's origin (no Accept: a handshake is no page visit)."""
    headers = browser.headers(path, {"Origin": browser.origin})
    del headers["Accept"]
    return headers


def notebook_json(text):
    return {"cells": [{"cell_type": "markdown", "id": "c0", "metadata": {}, "source": text}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def save_notebook(browser, user, path, text):
    """Saves a notebook through the lab, as the user's Save does; returns the HTTP status."""
    status, body = api(browser, user, "PUT", f"contents/{urllib.parse.quote(path)}",
                       {"type": "notebook", "format": "json", "content": notebook_json(text)})
    return status, body


def list_folder(browser, user, path=""):
    status, body = api(browser, user, "GET", f"contents/{urllib.parse.quote(path)}?content=1")
    names = sorted(item["name"] for item in json.loads(body)["content"]) if status == 200 else None
    return status, names


def kernel_one_plus_one(browser, user):
    """A kernel through Apache's websocket proxy computes 1+1 (kernel_roundtrip.py)."""
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    result = sh(JUPYTER_PYTHON, KERNEL_ROUNDTRIP, "http://localhost", user, "--cookie", cookie,
                "--xsrf", browser.cookies.get("_xsrf", ""), "--header", f"Authorization: {browser.auth}",
                check=False, timeout=180)
    return result.returncode == 0 and "execute_result: 2 " in result.stdout, result.stdout + result.stderr


def logout(browser, user):
    status, headers, page = browser.get(f"/user/{user}/logout")
    return status, headers, page


class Bystander:
    """Another person using the site meanwhile (with a thread of their own): visits (the site's root
    to the lab) and API calls in turn, 0.1 s apart, timed (in `samples`, and by kind in `by_kind`
    for those that succeeded); failures kept. A context manager."""

    def __init__(self, browser, user):
        self.browser, self.user = browser, user
        self.samples, self.errors = [], []
        self.by_kind = {"visit": [], "api": []}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        turn = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            kind = "visit" if turn % 2 == 0 else "api"
            try:
                if kind == "visit":
                    result = visit(self.browser)
                    ok, what = result.in_lab(self.user), result.trail()
                else:
                    status, body = api(self.browser, self.user, "GET", "status")
                    ok, what = status == 200, f"api/status {status} {body[:120]}"
            except Exception as error:  # noqa: BLE001 (a failure is a finding)
                ok, what = False, repr(error)
            seconds = time.monotonic() - started
            self.samples.append(seconds)
            if ok:
                self.by_kind[kind].append(seconds)
            else:
                self.errors.append(f"{kind} after {seconds:.1f} s: {what}")
            turn += 1
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=180)

    def summary(self):
        return (f"{len(self.samples)} visits and API calls of another person: p50 {milliseconds(percentile(self.samples, 0.5))}, "
                f"p99 {milliseconds(percentile(self.samples, 0.99))} ({goal(percentile(self.samples, 0.99) <= 0.25)} p99 <= 250 ms), "
                f"max {milliseconds(max(self.samples))}, errors {len(self.errors)}")

    def assert_never_kept_waiting(self):
        """Every visit and call got its answer, none after NEVER_KEPT_WAITING_S. What this rules
        out is a stall (a worker or a connection held by someone else's server answers after
        the whole flood, or never); how fast is a figure for the record, not asserted: on 2
        shared cores a flood's CPU load alone moves p99 from 10 to 300 ms."""
        assert not self.errors, f"{len(self.errors)} errors, e.g. {self.errors[:3]}"
        assert len(self.samples) >= 20, f"only {len(self.samples)} samples"
        assert max(self.samples) <= NEVER_KEPT_WAITING_S, self.summary()


# A wait no stall could explain away: a flood in these tests lasts 10 s, a held request
# waits for wrk's 5 s timeout or the gate's 120 s.
NEVER_KEPT_WAITING_S = 3.0


def goal(met):
    """How a figure compares with the goal issue 13 set (recorded, not asserted)."""
    return "goal met:" if met else "GOAL MISSED:"


def milliseconds(seconds):
    return f"{seconds * 1000:.1f} ms"


# --- the user's home, as the user -------------------------------------------------------------

def home(user):
    return pathlib.Path(pwd.getpwnam(user).pw_dir)


def write_as(user, path, data):
    """The user writes a file (text) in their home, as they would in a terminal."""
    path = pathlib.Path(path)
    result = sh("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env",
                "sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "-", path, input=data, check=False)
    assert result.returncode == 0, result.stderr
    return path


def stop_server(user):
    as_user(user, LAUNCH, "stop")


def server_status(user):
    result = as_user(user, LAUNCH, "status", "--json")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def server_pids(user):
    """The user's notebook server processes (not kernels)."""
    return sorted(pids("-u", user, "-f", "jupyter-lab"))


# --- Apache's error logs, as the admin reads them ---------------------------------------------

class ErrorLog:
    """What the admin's logs (Apache's, the site's, the gate's) gained since this was made."""

    def __init__(self):
        self.offsets = {path: (path.stat().st_size if path.exists() else 0) for path in ERROR_LOGS}

    def text(self):
        parts = []
        for path, offset in self.offsets.items():
            if path.exists():
                with open(path, "rb") as f:
                    f.seek(offset)
                    parts.append(f.read().decode(errors="replace"))
        return "".join(parts)

    def lines(self, pattern):
        return [line for line in self.text().splitlines() if re.search(pattern, line)]

    def wait_for(self, pattern, timeout=60.0):
        """The first new line matching `pattern` (a regular expression), waited for."""
        found = []

        def seen():
            found[:] = self.lines(pattern)
            return bool(found)
        try:
            wait_for(seen, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"no line matching {pattern!r} in Apache's error logs; they gained:\n{self.text()[-4000:]}")
        return found[0]


# --- processes and descriptors ----------------------------------------------------------------

def processes():
    """pid -> (user, comm, cmdline) of every process in the sandbox (zombies have no cmdline)."""
    table = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        uid = int(fields["Uid"].split()[0])
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        table[int(entry.name)] = (user, fields["Name"].strip(), cmdline, fields["State"].split()[0], int(fields["PPid"]))
    return table


def descriptor_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def proc_kib(pid, file, field):
    """A "Field:   N kB" line of /proc/PID/FILE, in KiB (0 when the process is gone)."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    """Proportional set size: shared pages divided among their users (sums add up)."""
    return proc_kib(pid, "smaps_rollup", "Pss")


def rss_kib(pid):
    return proc_kib(pid, "status", "VmRSS")


def memory_kib(pids):
    """PSS of these processes together, in KiB."""
    return sum(pss_kib(pid) for pid in pids)


def pids(*pgrep_args):
    """The PIDs pgrep finds with these arguments."""
    return [int(p) for p in sh("pgrep", *pgrep_args, check=False).stdout.split()]


def ancestors(pid, table=None):
    table = table or processes()
    chain = []
    while pid in table and pid > 1:
        pid = table[pid][4]
        chain.append(pid)
    return chain


# --- figures -----------------------------------------------------------------------------------

def write_figures(name, lines, request=None):
    """figures/NAME.txt under the artifacts folder (scripts/test prints it), and the terminal
    (past pytest's output capture, given the fixture's `request`)."""
    folder = pathlib.Path(ARTIFACTS) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    (folder / name).write_text(text)
    capture = request.config.pluginmanager.getplugin("capturemanager") if request else None
    if capture:
        with capture.global_and_fixture_disabled():
            print("\n" + text, flush=True)
    else:
        print("\n" + text, flush=True)
    return text


def wrk(url, connections, seconds, headers=(), timeout=2):
    """wrk's figures for a load on `url`: req/s, latency percentiles (seconds) for 50/75/90/99,
    non-2xx/3xx answers, socket errors (connect, read, write, timeout). A C load generator: a
    Python client with thousands of connections measures its own event loop, not the site."""
    argv = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", f"--timeout={timeout}s"]
    for header in headers:
        argv += ["-H", header]
    out = sh(*argv, url, timeout=seconds + 120).stdout

    def latency(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "latency": {p: latency(p) for p in (50, 75, 90, 99)},
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": tuple(int(n) for n in errors.groups()) if errors else (0, 0, 0, 0),
            "output": out}


def write_sections(name, title, sections, request):
    """A test module's figures (section -> lines), once its tests have run, if any were taken."""
    if sections:
        write_figures(name, [title] + [line for lines in sections.values() for line in lines], request)


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]
