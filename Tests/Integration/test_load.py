"""Issue 7, load: a herd of first visits, warm visits from many users at once, and a soak of
the things users really do, through the whole site (Apache, mod_fcgid, hydra-cgi, sudo, the
helpers, Jupyter, kernels over the websocket proxy).

Users: swarm00..swarm29 (this file's own directory people). The herd needs their first visits,
so it comes first; the warm visits and the soak start any server that is not running.
Figures go to figures/load.txt (scripts/test prints it) and to the terminal. No assertion is
on speed (the machine is shared): times are figures, "answered correctly" is the assertion.

Soak length: HYDRA_SOAK_SECONDS, else 300 s when CI=true, else 600 s.
"""
import collections
import concurrent.futures
import os
import pathlib
import random
import re
import threading
import time

import pytest

from conftest import PREFIX, wait_for
from load_support import (api, browser_for, descriptor_count, kernel_one_plus_one, logout, percentile, processes,
                          rss_kib, save_notebook, server_pids, visit, write_sections)

USERS = [f"swarm{i:02d}" for i in range(30)]
WARM_VISITS = 200
FIGURES = collections.OrderedDict()  # section -> lines


def soak_seconds():
    if os.environ.get("HYDRA_SOAK_SECONDS"):
        return float(os.environ["HYDRA_SOAK_SECONDS"])
    return 300.0 if os.environ.get("CI", "").lower() == "true" else 600.0


@pytest.fixture(scope="module", autouse=True)
def load_figures(request):
    yield
    write_sections("load.txt", "load (issue 7)", FIGURES, request)


def has_account(name):
    with open("/etc/passwd") as f:
        return any(line.split(":")[0] == name for line in f)


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"


def own_lab(result, user):
    """The lab page, and the user's own (its base URL is theirs)."""
    return result.in_lab(user) and f'"baseUrl": "/user/{user}/"' in result.page


def ensure_labs(users):
    """Every user has a running server and a browser logged in to it (started now if needed)."""
    browsers = {}

    def one(user):
        browser = browser_for(user)
        result = visit(browser, max_steps=400, patience=900)
        assert own_lab(result, user), f"{user}: {result.trail()}"
        browsers[user] = browser
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, users))
    return browsers


# --- the site as processes and descriptors ----------------------------------------------------------

def census():
    """What runs in the sandbox, by kind, with the descriptors of hydra-cgi, Apache and Jupyter."""
    table = processes()
    kinds = collections.Counter()
    fds = collections.Counter()
    fronts, servers = {}, {}
    for pid, (user, comm, cmd, state, _) in table.items():
        first = cmd.split(" ")[0] if cmd else ""
        if state == "Z":
            kind = "zombie"
        elif first == str(PREFIX / "hydra-cgi"):
            kind = "hydra-cgi"
            fronts[pid] = descriptor_count(pid)
        elif "apache2" in first:
            kind = "apache"
        elif "ipykernel_launcher" in cmd:
            kind = "kernel"
        elif "jupyter-lab" in cmd:
            kind = "jupyter server"
            servers[pid] = (user, descriptor_kinds(pid))
        elif any(h in first for h in ("sudo", "ipynb-launch", "addldapuser")) or first in ("git", "/usr/bin/git") or "git-" in comm:
            kind = "helper"
        else:
            kind = "other"
        kinds[kind] += 1
        if kind in ("hydra-cgi", "apache", "jupyter server"):
            fds[kind] += descriptor_count(pid)
    return {"kinds": kinds, "fds": fds, "fronts": fronts, "servers": servers, "total": len(table)}


def descriptor_kinds(pid):
    """A process's descriptors by kind: socket, anon_inode (eventfd, epoll), pipe, or the file."""
    kinds = collections.Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":")[0] if ":" in target and not target.startswith("/") else target] += 1
    except OSError:
        pass
    return kinds


def settled():
    """No helper, kernel or zombie of the load test's users left (work after an answer and kernel
    deletions are done). Other test files' people may keep kernels running (a browser's open
    notebook), so only the swarm counts."""
    ours = set(USERS)
    for user, comm, cmd, state, _ in processes().values():
        words = set(re.split(r"[\s/=]+", cmd or ""))
        if (user in ours or words & ours) and (state == "Z" or "ipykernel_launcher" in cmd
                                               or any(h in cmd for h in ("sudo", "ipynb-launch", "git"))):
            return False
    return True


def describe(c):
    k, f = c["kinds"], c["fds"]
    return (f"{c['total']} processes (jupyter servers {k['jupyter server']}, kernels {k['kernel']}, hydra-cgi {k['hydra-cgi']}, "
            f"apache {k['apache']}, helpers {k['helper']}, zombies {k['zombie']}); descriptors: hydra-cgi {f['hydra-cgi']}, "
            f"apache {f['apache']}, jupyter servers {f['jupyter server']}")


# --- the herd ------------------------------------------------------------------------------------

def test_herd_of_30_first_visits_at_once_each_user_reaches_their_own_lab_with_one_server(site):
    fresh = [u for u in USERS if not has_account(u)]
    assert fresh == USERS, f"the herd is 30 first visits: these already have accounts: {sorted(set(USERS) - set(fresh))}"
    barrier = threading.Barrier(len(USERS))
    released = []

    def one(user):
        browser = browser_for(user)
        barrier.wait()
        released.append(time.monotonic())
        result = visit(browser, max_steps=400, patience=900)
        return user, result, time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
        results = list(pool.map(one, USERS))
    start = min(released)
    reached = [user for user, result, _ in results if own_lab(result, user)]
    last = max(end for _, _, end in results) - start
    waits = sum(1 for _, r, _ in results for s in r.steps if s.title.startswith("Starting"))
    servers = {user: server_pids(user) for user in USERS}
    FIGURES["herd"] = [
        f"  herd: {len(reached)}/{len(USERS)} first visits reached their own lab; time to the last lab {last:.1f} s; "
        f"first answer p50 {ms(percentile([r.steps[0].seconds for _, r, _ in results], 0.5))}; "
        f"'starting' pages shown {waits}; servers per user: {sorted(set(len(p) for p in servers.values()))}"]
    failed = {user: result.trail() for user, result, _ in results if not own_lab(result, user)}
    assert not failed, failed
    assert all(len(pids) == 1 for pids in servers.values()), servers


# --- warm visits -----------------------------------------------------------------------------------

def test_200_warm_visits_from_30_users_at_once_all_reach_their_own_lab_and_no_server_restarts(site):
    ensure_labs(USERS)
    wait_for(settled, timeout=180, interval=0.5)
    before = {user: server_pids(user) for user in USERS}
    plan = collections.defaultdict(int)
    for i in range(WARM_VISITS):
        plan[USERS[i % len(USERS)]] += 1
    barrier = threading.Barrier(len(USERS))

    def one_user(user):
        browser = browser_for(user)  # a browser of this user's, returning after its first visit
        barrier.wait()
        outcomes = []
        for _ in range(plan[user]):
            result = visit(browser, max_steps=400, patience=900)
            outcomes.append((own_lab(result, user), result.seconds, result.steps[0].seconds, len(result.steps), result.trail()))
        return user, outcomes
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(USERS)) as pool:
        results = list(pool.map(one_user, USERS))
    elapsed = time.monotonic() - started
    outcomes = [o for _, os_ in results for o in os_]
    errors = [(user, o[4]) for user, os_ in results for o in os_ if not o[0]]
    to_lab = [o[1] for o in outcomes]
    first_answer = [o[2] for o in outcomes]
    after = {user: server_pids(user) for user in USERS}
    steps = collections.Counter(o[3] for o in outcomes)
    FIGURES["warm"] = [
        f"  warm visits: {len(outcomes)} from {len(USERS)} users at once in {elapsed:.1f} s, errors {len(errors)}; "
        f"to the lab p50 {ms(percentile(to_lab, 0.5))} p99 {ms(percentile(to_lab, 0.99))}; "
        f"the front's answer to GET / p50 {ms(percentile(first_answer, 0.5))} p99 {ms(percentile(first_answer, 0.99))}; "
        f"requests per visit {dict(sorted(steps.items()))}; servers restarted {sum(before[u] != after[u] for u in USERS)}"]
    assert len(outcomes) == WARM_VISITS
    assert not errors, errors[:5]
    assert after == before, {u: (before[u], after[u]) for u in USERS if before[u] != after[u]}


# --- the soak ------------------------------------------------------------------------------------

class Soak:
    """Workers doing what users do, each with its own browser per user, until the deadline."""

    ACTIONS = (("visit", 25), ("lab", 20), ("list", 20), ("save", 20), ("kernel", 5), ("logout and back", 10))

    def __init__(self, users, seconds, workers=8):
        self.users = users
        self.deadline = time.monotonic() + seconds
        self.workers = workers
        self.counts = collections.Counter()
        self.requests = 0
        self.errors = []
        self.lock = threading.Lock()
        self.samples = []  # (seconds since start, {pid: rss KiB}, {pid: fds})
        self.started = time.monotonic()

    def note(self, action, ok, requests, detail=""):
        with self.lock:
            self.counts[action] += 1
            self.requests += requests
            if not ok:
                self.errors.append(f"{action}: {detail}"[:600])

    def worker(self, index):
        rng = random.Random(index)
        names, weights = zip(*self.ACTIONS)
        browsers = {}
        while time.monotonic() < self.deadline:
            user = rng.choice(self.users)
            if user not in browsers:
                browsers[user] = browser_for(user)
                result = visit(browsers[user], max_steps=400, patience=600)
                self.note("visit", own_lab(result, user), len(result.steps), result.trail())
                continue
            action = rng.choices(names, weights)[0]
            try:
                getattr(self, "do_" + action.replace(" ", "_"))(browsers[user], user, index)
            except Exception as error:  # a request that failed outright is an error too
                self.note(action, False, 1, f"{user}: {type(error).__name__}: {error}")

    def do_visit(self, browser, user, index):
        result = visit(browser, max_steps=400, patience=600)
        self.note("visit", own_lab(result, user), len(result.steps), f"{user}: {result.trail()}")

    def do_lab(self, browser, user, index):
        status, _, page = browser.get(f"/user/{user}/lab")
        self.note("lab", status == 200 and f'"baseUrl": "/user/{user}/"' in page, 1, f"{user}: lab {status}")

    def do_list(self, browser, user, index):
        status, body = api(browser, user, "GET", "contents?content=1")
        self.note("list", status == 200 and '"type": "directory"' in body, 1, f"{user}: list {status} {body[:200]}")

    def do_save(self, browser, user, index):
        text = f"soak {index} {time.monotonic()}"
        status, body = save_notebook(browser, user, f"soak-{index}.ipynb", text)
        ok = status in (200, 201)
        if ok:
            status, body = api(browser, user, "GET", f"contents/soak-{index}.ipynb?content=1")
            ok = status == 200 and text in body
        self.note("save", ok, 2, f"{user}: save {status} {body[:200]}")

    def do_kernel(self, browser, user, index):
        ok, output = kernel_one_plus_one(browser, user)
        self.note("kernel", ok, 4, f"{user}: {output[-400:]}")

    def do_logout_and_back(self, browser, user, index):
        status, headers, _ = logout(browser, user)
        ok = status == 302
        out = visit(browser, headers.get("Location", "/?logged_out=1").replace("http://localhost", ""), max_steps=10)
        ok = ok and out.status == 200 and "logged out" in out.page
        back = visit(browser, max_steps=400, patience=600)
        ok = ok and own_lab(back, user)
        self.note("logout and back", ok, 1 + len(out.steps) + len(back.steps), f"{user}: logout {status}, {out.trail()}, {back.trail()}")

    def sampler(self, stop):
        while not stop.wait(2.0):
            fronts = {pid: (rss_kib(pid), descriptor_count(pid)) for pid, p in processes().items()
                      if p[2].startswith(str(PREFIX / "hydra-cgi")) and p[3] != "Z"}
            self.samples.append((time.monotonic() - self.started, fronts))

    def run(self):
        stop = threading.Event()
        sampler = threading.Thread(target=self.sampler, args=(stop,), daemon=True)
        sampler.start()
        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self.worker, range(self.workers)))
        stop.set()
        sampler.join()
        return time.monotonic() - self.started


def server_starts(errors):
    """For the people an error names ("ACTION: USER: ..."): each start of their server and why
    (its log's lines), so that a failed soak says whether a server was replaced under them."""
    named = sorted({e.split(": ")[1] for e in errors if len(e.split(": ")) > 2} & set(USERS))
    lines = []
    for user in named:
        for log in sorted(pathlib.Path(f"/run/hydra/{user}").glob("*.log*")):
            lines += [f"    {user}: {line.strip()[:300]}" for line in log.read_text(errors="replace").splitlines()
                      if line.startswith("hydra: starting")]
    return lines


def jupyter_growth(before, after):
    """How the notebook servers' descriptors changed, by kind. Seen while writing this test:
    Jupyter sometimes keeps 4 more anon_inode descriptors (a ZeroMQ context's epoll and eventfds)
    after kernels of one server start at the same moment; hydra does not own that code."""
    changed = collections.Counter()
    grew = 0
    for pid, (user, kinds) in after["servers"].items():
        if pid not in before["servers"]:
            continue
        delta = kinds.copy()
        delta.subtract(before["servers"][pid][1])
        delta = {k: v for k, v in delta.items() if v}
        grew += any(v > 0 for v in delta.values())
        changed.update(delta)
    total = sum(changed.values())
    return (f"{grew} of {len(after['servers'])} hold more descriptors after the soak, {total:+d} in all"
            + (f" ({', '.join(f'{k} {v:+d}' for k, v in sorted(changed.items()))})" if changed else ""))


def front_memory(samples):
    """hydra-cgi's RSS over the soak: the total of its processes, and the process that lived longest."""
    totals = [sum(rss for rss, _ in fronts.values()) for _, fronts in samples if fronts]
    lives = collections.defaultdict(list)
    for at, fronts in samples:
        for pid, (rss, fds) in fronts.items():
            lives[pid].append((at, rss, fds))
    longest = max(lives.items(), key=lambda item: len(item[1])) if lives else (None, [])
    return totals, longest, lives


def warm_up(browsers):
    """Each server once through what the soak does: Jupyter opens some descriptors for good on
    its first kernel (ZeroMQ) and first save (the notebook signature database)."""
    def one(user):
        ok, output = kernel_one_plus_one(browsers[user], user)
        assert ok, f"{user}: {output}"
        status, body = save_notebook(browsers[user], user, "soak-warm-up.ipynb", "warm-up")
        assert status in (200, 201), body
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, browsers))


def test_soak_of_mixed_traffic_has_no_error_no_leaked_process_or_descriptor_and_flat_front_memory(site):
    seconds = soak_seconds()
    warm_up(ensure_labs(USERS))
    wait_for(settled, timeout=180, interval=0.5)
    servers_before = {user: server_pids(user) for user in USERS}
    before = census()

    soak = Soak(USERS, seconds)
    elapsed = soak.run()

    wait_for(settled, timeout=180, interval=0.5)
    after = census()
    servers_after = {user: server_pids(user) for user in USERS}
    totals, (longest_pid, longest), lives = front_memory(soak.samples)
    mib = lambda kib: f"{kib / 1024:.1f} MiB"  # noqa: E731
    warm = [rss for at, rss, _ in longest if at >= min(60.0, elapsed / 4)] or [rss for _, rss, _ in longest]
    FIGURES["soak"] = [
        f"  soak: {elapsed:.0f} s ({seconds:.0f} asked), {soak.requests} requests in {sum(soak.counts.values())} actions "
        f"({', '.join(f'{k} {v}' for k, v in sorted(soak.counts.items()))}), errors {len(soak.errors)}",
        f"    before: {describe(before)}",
        f"    after:  {describe(after)}",
        f"    hydra-cgi RSS, all processes: first {mib(totals[0]) if totals else '?'}, last {mib(totals[-1]) if totals else '?'}, "
        f"max {mib(max(totals)) if totals else '?'}; longest-lived process {longest_pid} ({len(longest)} samples): "
        f"first {mib(longest[0][1]) if longest else '?'}, after warm-up {mib(warm[0]) if warm else '?'}, last {mib(longest[-1][1]) if longest else '?'}, "
        f"max {mib(max(r for _, r, _ in longest)) if longest else '?'}; descriptors first {longest[0][2] if longest else '?'} last {longest[-1][2] if longest else '?'}",
        f"    notebook servers (Jupyter's own, reported, not asserted): {jupyter_growth(before, after)}",
    ] + [f"    error: {e}" for e in soak.errors[:10]] + server_starts(soak.errors)

    assert not soak.errors, f"{len(soak.errors)} errors, the first: {soak.errors[:5]}; their servers' starts: {server_starts(soak.errors)}"
    assert all(soak.counts[name] > 0 for name, _ in Soak.ACTIONS), soak.counts
    # No leaked process: the same servers, nothing left running, the one front daemon as before.
    assert servers_after == servers_before, {u: (servers_before[u], servers_after[u]) for u in USERS if servers_before[u] != servers_after[u]}
    # (Other test files' people may keep a kernel open: nothing more than before the soak.)
    assert all(after["kinds"][k] <= before["kinds"][k] for k in ("helper", "kernel", "zombie")), (describe(before), describe(after))
    assert set(after["fronts"]) == set(before["fronts"]) and len(after["fronts"]) == 1, (describe(before), describe(after))
    assert after["kinds"]["jupyter server"] == before["kinds"]["jupyter server"], (describe(before), describe(after))
    # No leaked descriptor: the front holds as many descriptors at rest as before the soak.
    grown = {pid: (before["fronts"][pid], n) for pid, n in after["fronts"].items() if pid in before["fronts"] and n > before["fronts"][pid]}
    assert not grown, f"the front holds more descriptors after the soak (pid: before, after): {grown}"

    # Flat memory: the front ends the soak no bigger than it was once warmed up (a quarter of
    # the way, at most a minute in), give or take 4 MiB or 10%.
    assert len(longest) >= 3, f"too few samples of hydra-cgi's memory: {lives}"
    first_at, last_at = soak.samples[0][0], soak.samples[-1][0]
    grew = {}
    for pid, series in lives.items():
        if series[0][0] != first_at or series[-1][0] != last_at:
            continue  # started or ended during the soak (a front restarted by its supervisor)
        settled_rss = next(rss for at, rss, _ in series if at >= min(60.0, elapsed / 4))
        if series[-1][1] > settled_rss + max(4 * 1024, settled_rss // 10):
            grew[pid] = (mib(settled_rss), mib(series[-1][1]))
    assert not grew, f"hydra-cgi processes whose memory grew during the soak (after warm-up, last): {grew}"
