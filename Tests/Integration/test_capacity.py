"""Issue 13: a class on one machine, and no one person can stall the site. Through the real
Apache (event MPM with hydra-mpm.conf), hydra-gate and real Jupyter servers:

1. a class's open notebooks: 1,000 websockets from 50 people held for a minute, answering pings,
   while another person's visits and API calls stay fast and a kernel still computes;
2. a person whose server accepts and never answers keeps 300 requests in flight (twice Debian's
   150 workers, which this pinned before): her excess gets 429 within a second, the others stay
   fast, the gate's log names her; with twice hydra's own 2048 workers in flight, nothing is
   pinned and nobody else gets an error (the time of a refusal is then Apache's request rate on
   this machine: a figure);
3. a link or a foreign socket planted in place of a person's socket: nothing but the person's own
   server is ever connected to (a root-owned trap sees nothing);
4. a person who fills everything they may write under /run stops nobody's first visit, and the
   server log stays under its cap while the server writes without end;
5. a stopped server's URLs lead back through the front into the lab; a runtime directory simply
   gone (a reboot) is not reported as tampering;
6. the site's and the person's websocket limits, and a machine without memory for another
   server: a clear answer at once, never a hang.

People: class00..class49, watcher, mallory, trudy, filler, newcomer, sleeper, rebooted, crowded.
Figures go to figures/capacity.txt (scripts/test prints it). Times are figures, each beside the
goal the issue set (others' p99 <= 250 ms, 90% of her refusals within 1 s: "goal met" or "GOAL
MISSED"); what is asserted is what no amount of CPU contention explains: no error, nobody kept
waiting more than 3 s (a stalled site keeps people waiting for the whole 10 s flood or until a
timeout), every refusal a 429 with Retry-After. On this 2-core machine a concurrent build alone
has moved the bystander's p99 from 10 to 300 ms.
"""
import asyncio
import collections
import concurrent.futures
import json
import os
import pathlib
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import PREFIX, REPO, as_user, basic_auth, install_config, restart_gate, sh, wait_for
from load_support import (JUPYTER_PYTHON, NEVER_KEPT_WAITING_S, Bystander, ErrorLog, api, browser_for, goal,
                          kernel_one_plus_one, memory_kib, milliseconds,
                          processes, server_pids, server_status, stop_server, visit, wrk, websocket_headers, write_sections)

CLASS = [f"class{i:02d}" for i in range(50)]
WEBSOCKETS_EACH = 20
HOLD_SECONDS = 60
FIGURES = collections.OrderedDict()
CROWD = REPO / "Tests/Integration/websocket_crowd.py"
MPM_CONF = REPO / "apache/hydra-mpm.conf"


@pytest.fixture(scope="module", autouse=True)
def capacity_figures(request):
    yield
    write_sections("capacity.txt", "capacity (issue 13)", FIGURES, request)


def in_lab(user):
    browser = browser_for(user)
    result = visit(browser, max_steps=400, patience=600)
    assert result.in_lab(user), f"{user}: {result.trail()}"
    return browser


def apache_pids():
    return [pid for pid, (_, comm, _, state, _) in processes().items() if comm == "apache2" and state != "Z"]


def gate_pids():
    return [pid for pid, (_, _, cmd, state, _) in processes().items() if cmd.startswith(str(PREFIX / "hydra-gate")) and state != "Z"]


def mpm_setting(name):
    return int(re.search(rf"^\s*{name}\s+(\d+)", MPM_CONF.read_text(), re.M).group(1))


@pytest.fixture(scope="module")
def watcher(site):
    return in_lab("watcher")


# --- 1. a class's open notebooks ---------------------------------------------------------------------

def test_a_class_of_50_with_20_open_websockets_each_stays_open_and_nobody_else_waits(site, watcher):
    browsers = {}

    def one(user):
        browsers[user] = in_lab(user)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(one, CLASS))
    apache_before, gate_before = memory_kib(apache_pids()), memory_kib(gate_pids())
    spec = {"site": "http://localhost", "path": "api/events/subscribe", "per_person": WEBSOCKETS_EACH,
            "hold": HOLD_SECONDS, "ping": 10,
            "people": [{"user": u, "headers": websocket_headers(browsers[u], f"/user/{u}/api/events/subscribe")} for u in CLASS]}
    crowd = subprocess.Popen([JUPYTER_PYTHON, CROWD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    crowd.stdin.write(json.dumps(spec))
    crowd.stdin.close()
    opened = json.loads(crowd.stdout.readline())
    try:
        assert opened["opened"] == len(CLASS) * WEBSOCKETS_EACH, opened
        held_apache, held_gate = memory_kib(apache_pids()), memory_kib(gate_pids())
        workers = len(apache_pids())
        with Bystander(watcher, "watcher") as watching:
            time.sleep(HOLD_SECONDS - 10)
        done = json.loads(crowd.stdout.readline())
    finally:
        crowd.wait(timeout=120)
    one_plus_one, output = kernel_one_plus_one(watcher, "watcher")
    count = opened["opened"]
    FIGURES["websockets"] = [
        f"  {count} websockets (api/events/subscribe) from {len(CLASS)} people, held {HOLD_SECONDS} s: "
        f"open at the end {done['open_at_end']}, answered pings {done['answered_pings']}, pings {done['pings']}, pongs {done['pongs']}",
        f"  opening them (64 at a time): p50 {milliseconds(opened['connect_p50'])}, slowest {milliseconds(opened['connect_max'])}",
        f"  Apache (PSS of {workers} processes): {apache_before / 1024:.1f} MiB before, {held_apache / 1024:.1f} MiB with them open "
        f"({(held_apache - apache_before) / count:.0f} KiB per websocket); hydra-gate {gate_before / 1024:.1f} -> {held_gate / 1024:.1f} MiB",
        f"  meanwhile {watching.summary()}",
        f"  a kernel computed 1+1 afterwards: {one_plus_one}",
    ]
    assert done["open_at_end"] == count, done
    assert done["answered_pings"] == count, done
    watching.assert_never_kept_waiting()
    assert one_plus_one, output


# --- 2. a server that accepts and never answers --------------------------------------------------------

STALL = """
import os, socket, sys, time
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
os.chmod(path, 0o660)
listener.listen(4096)
held = []
while True:
    connection, _ = listener.accept()
    held.append(connection)  # accepted, never read, never answered
"""


def start_stalling_server(user):
    """The person's own socket, served by something that accepts and never answers."""
    in_lab(user)
    stop_server(user)
    process = subprocess.Popen(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env",
                                "/usr/bin/python3", "-c", STALL, f"/run/hydra/{user}/jupyter.sock"])
    wait_for(lambda: os.path.exists(f"/run/hydra/{user}/jupyter.sock"), timeout=10)
    return process


async def one_request(user, path):
    """One request on its own connection: (status, the answer's head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", 80)
    writer.write(f"GET /user/{user}/{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {basic_auth(user)}\r\n"
                 f"Connection: close\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    writer.close()
    return int(head.split(b" ", 2)[1]), head.decode(errors="replace")


def stall_flood(connections, watcher, keep_alive):
    """mallory's server accepts and never answers; `connections` requests to it stay in flight for
    10 s (wrk sends the next one as soon as the last one is answered: on the same connection, or
    with `keep_alive` off on a new one each time) while another person uses the site."""
    log = ErrorLog()
    with Bystander(watcher, "watcher") as watching:
        time.sleep(1)
        flood = wrk("http://localhost/user/mallory/api/status", connections=connections, seconds=10,
                    headers=[f"Authorization: {basic_auth('mallory')}"] + ([] if keep_alive else ["Connection: close"]), timeout=5)
        status, head = asyncio.run(one_request("mallory", "api/status"))
        time.sleep(1)
    latency = flood["latency"]
    said = log.lines(r"mallory has 16 requests under way.*429")
    lines = [
        f"  {connections} of mallory's requests in flight for 10 s, her server never answering: {flood['requests']} answered "
        f"({flood['rps']:.0f}/s), non-2xx {flood['non_2xx']}, socket errors (connect, read, write, timeout) {flood['socket_errors']}",
        f"    her refusals: p50 {milliseconds(latency[50])}, p90 {milliseconds(latency[90])} ({goal(latency[90] <= 1.0)} 90% within 1 s), "
        f"p99 {milliseconds(latency[99])}; one more meanwhile: {status}, "
        f"Retry-After {'present' if 'retry-after:' in head.lower() else 'MISSING'}",
        f"    meanwhile {watching.summary()}",
        f"    the gate's log: {said[0].strip() if said else '(nothing)'}",
    ]
    # Everything answered was refused (429, with Retry-After): her server holds her share (16,
    # wrk's timeouts), and the gate's log names her.
    assert flood["requests"] > connections and flood["non_2xx"] == flood["requests"], flood["output"]
    assert status == 429 and "retry-after:" in head.lower(), head
    assert said, f"the gate's log does not name mallory: {log.text()[-2000:]}"
    assert not watching.errors, watching.errors[:3]
    return flood, watching, lines


def test_a_server_that_never_answers_holds_only_its_owners_share_and_the_excess_gets_429_at_once(site, watcher):
    """The report's attack: twice Debian's 150 workers in flight (each pinned a worker for 300 s
    before). Her requests beyond her 16 are refused within a second, nobody else waits."""
    stalling = start_stalling_server("mallory")
    try:
        flood, watching, lines = stall_flood(2 * 150, watcher, keep_alive=True)
    finally:
        stalling.kill()
        stalling.wait()
    FIGURES["stall"] = lines
    # Refused at once rather than held: no refusal waited anywhere near a timeout.
    assert flood["latency"][99] <= NEVER_KEPT_WAITING_S, flood["output"]
    watching.assert_never_kept_waiting()


def test_twice_apaches_workers_from_one_person_are_refused_and_the_site_recovers_at_once(site, watcher):
    """Twice hydra's own MaxRequestWorkers (4096) in flight: no worker is pinned (all refused but
    16), nobody else gets an error. On 2 cores this is Apache's request rate at its limit: a
    refusal takes about 4096 / (requests per second); the figure is recorded, not asserted."""
    stalling = start_stalling_server("mallory")
    try:
        # A connection each: 4096 kept-alive connections would fill Apache's connection slots
        # themselves (an address-level flood, for the firewall: README, "Capacity").
        flood, watching, lines = stall_flood(2 * mpm_setting("MaxRequestWorkers"), watcher, keep_alive=False)
    finally:
        stalling.kill()
        stalling.wait()
    after = Bystander(watcher, "watcher")
    with after:
        time.sleep(5)
    FIGURES["flood"] = lines + [f"    right after: {after.summary()}"]
    after.assert_never_kept_waiting()


def test_a_request_to_a_server_that_never_answers_gets_504_after_the_response_timeout(site, config):
    config(**{"gate.response_timeout_seconds": "2"})
    restart_gate()
    stalling = start_stalling_server("mallory")
    try:
        started = time.monotonic()
        status, head = asyncio.run(one_request("mallory", "api/contents"))
        took = time.monotonic() - started
    finally:
        stalling.kill()
        stalling.wait()
        install_config()
        restart_gate()
    assert status == 504, head
    assert 1.5 <= took <= 10, took


# --- 3. planted links and foreign sockets ----------------------------------------------------------------

class Trap:
    """A root-owned socket anyone may connect to (mode 0666): it counts connections and bytes."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.path))
        os.chmod(self.path, 0o666)
        self.listener.listen(64)
        self.connections, self.received = 0, 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            connection.settimeout(2)
            try:
                self.received += len(connection.recv(65536))
            except OSError:
                pass
            connection.close()

    def close(self):
        self.listener.close()
        self.path.unlink(missing_ok=True)


def plant(user, what):
    target = pathlib.Path(f"/run/hydra/{user}/jupyter.sock")
    stop_server(user)
    target.unlink(missing_ok=True)
    what(target)


def test_a_link_or_a_foreign_socket_in_place_of_the_persons_socket_is_never_connected_to(site, watcher):
    user = "trudy"
    browser = in_lab(user)
    trap = Trap("/run/hydra-trap/trap.sock")
    watcher_socket = "/run/hydra/watcher/jupyter.sock"
    seen = []
    try:
        in_place = []
        cases = {
            "a link to a root-owned socket": lambda t: as_user(user, "ln", "-s", str(trap.path), str(t)),
            "a link to another person's server": lambda t: as_user(user, "ln", "-s", watcher_socket, str(t)),
            "a root-owned socket in its place": lambda t: in_place.append(Trap(t)),
        }
        for case, what in cases.items():
            plant(user, what)
            status, body = api(browser, user, "GET", "status")
            seen.append(f"{case}: api/status {status}")
            assert status in (502, 503), f"{case}: {status} {body[:300]}"
            assert "Jupyter" not in body and '"started"' not in body, f"{case}: another server answered: {body[:300]}"
        time.sleep(0.5)
        assert (in_place[0].connections, in_place[0].received) == (0, 0), "the root-owned socket in its place was connected to"
        in_place[0].close()
        # The person's own socket, listened on by another account: connected, then dropped unread.
        pathlib.Path(f"/run/hydra/{user}/jupyter.sock").unlink(missing_ok=True)
        foreign = socket.socket(socket.AF_UNIX)
        foreign.bind(f"/run/hydra/{user}/jupyter.sock")
        os.chown(f"/run/hydra/{user}/jupyter.sock", 24102, 33)
        os.chmod(f"/run/hydra/{user}/jupyter.sock", 0o660)
        foreign.listen(8)
        foreign.settimeout(0.5)
        status, body = api(browser, user, "GET", "status")
        leaked = b""
        try:
            connection, _ = foreign.accept()
            connection.settimeout(1)
            leaked = connection.recv(65536)
        except OSError:
            pass
        foreign.close()
        seen.append(f"the person's socket with another account listening: api/status {status}, bytes it got {len(leaked)}")
        assert status in (502, 503) and leaked == b"", (status, leaked[:200])
        # The front does not connect to a planted socket either, and the next visit repairs it.
        plant(user, cases["a link to a root-owned socket"])
        result = visit(browser)
        seen.append(f"the next visit to the site: {result.trail()[-120:]}")
        assert result.in_lab(user), result.trail()
        assert (trap.connections, trap.received) == (0, 0), (trap.connections, trap.received)
    finally:
        trap.close()
        FIGURES["planted"] = ["  planted in place of trudy's socket (the trap saw "
                              f"{trap.connections} connections, {trap.received} bytes):"] + [f"    {s}" for s in seen]


# --- 4. what a person may write under /run ---------------------------------------------------------------

def test_the_server_log_stays_under_its_cap_while_the_server_writes_without_end(site):
    user = "filler"
    in_lab(user)
    server = server_status(user)["pid"]
    cap = 1 << 20  # server.log_max_bytes's default
    log = pathlib.Path(f"/run/hydra/{user}/server.log")
    older = log.with_name("server.log.1")
    sizes = []

    def size(path):  # the log is renamed and made anew as it rotates
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0
    chunk = b"spam " * 13107 + b"\n"  # 64 KiB
    # The server's own standard error (what it and its kernels print), written to as fast as it goes.
    with open(f"/proc/{server}/fd/2", "ab", buffering=0) as stderr:
        for index in range(480):  # 30 MiB
            stderr.write(chunk)
            if index % 8 == 0:
                sizes.append(size(log) + size(older))
    time.sleep(0.5)
    sizes.append(size(log) + size(older))
    FIGURES["log"] = [f"  30 MiB written to filler's server's stderr: server.log + server.log.1 at most {max(sizes) / 1024:.0f} KiB "
                      f"(cap {cap // 1024} KiB, {len(sizes)} samples)"]
    assert max(sizes) <= cap
    assert server_status(user).get("running"), "the server did not survive its own output"


def test_a_person_who_fills_everything_they_may_write_under_run_stops_nobodys_first_visit(site):
    user = "filler"
    in_lab(user)
    writable = as_user(user, "find", "/run", "-writable", "-type", "d").stdout.split()
    run_free_before = os.statvfs("/run").f_bavail * os.statvfs("/run").f_frsize
    written = {}
    for folder in writable:
        target = pathlib.Path(folder) / "filler.fill"
        as_user(user, "sh", "-c", 'cat /dev/zero > "$1"', "-", str(target), timeout=300)
        written[folder] = target.stat().st_size if target.exists() else 0
    run_free_after = os.statvfs("/run").f_bavail * os.statvfs("/run").f_frsize
    try:
        result = visit(browser_for("newcomer"), max_steps=400, patience=300)
        FIGURES["fill"] = ["  filler wrote until full: " + ", ".join(f"{k} {v >> 20} MiB" for k, v in written.items()),
                           f"  /run itself lost {(run_free_before - run_free_after) >> 10} KiB; newcomer's first visit: "
                           f"{'in the lab' if result.in_lab('newcomer') else result.trail()} after {result.seconds:.1f} s"]
        assert f"/run/hydra/{user}" in written and written[f"/run/hydra/{user}"] <= 16 << 20, written
        assert run_free_before - run_free_after < 1 << 20, (run_free_before, run_free_after)
        assert result.in_lab("newcomer"), result.trail()
    finally:
        for folder in written:
            (pathlib.Path(folder) / "filler.fill").unlink(missing_ok=True)


# --- 5. a stopped server, a reboot -------------------------------------------------------------------------

def test_a_stopped_servers_lab_url_leads_through_the_front_back_into_the_lab(site):
    user = "sleeper"
    browser = in_lab(user)
    stop_server(user)
    status, body = api(browser, user, "GET", "status")
    assert status == 503, (status, body[:200])
    bookmark = visit(browser, f"/user/{user}/lab")
    FIGURES["stopped"] = [f"  a bookmark to a stopped server: {bookmark.trail()}"]
    assert bookmark.in_lab(user), bookmark.trail()
    assert bookmark.steps[0].status == 302 and bookmark.steps[1].path.startswith("/?next="), bookmark.trail()
    assert len(server_pids(user)) == 1


def test_a_runtime_dir_gone_after_a_reboot_is_no_tampering_warning(site):
    from conftest import runtime_dir_gone
    user = "rebooted"
    browser = in_lab(user)
    stop_server(user)
    runtime_dir_gone(user)
    log = ErrorLog()
    result = visit(browser, f"/user/{user}/lab")
    assert result.in_lab(user), result.trail()
    assert not log.lines(rf"user={user}\b.*repaired|repaired.*{user}"), log.text()[-2000:]
    assert log.lines(rf"user={user}\b.*addldapuser prepared"), log.text()[-2000:]


# --- 6. limits reached: a clear answer at once ------------------------------------------------------------

def open_websockets(browser, user, count):
    spec = {"site": "http://localhost", "per_person": count, "hold": 1, "ping": 1,
            "people": [{"user": user, "headers": websocket_headers(browser, f"/user/{user}/api/events/subscribe")}]}
    result = sh(JUPYTER_PYTHON, CROWD, input=json.dumps(spec), timeout=120)
    return json.loads(result.stdout.splitlines()[0])


def test_websockets_beyond_the_persons_and_the_sites_limit_get_429_and_503_at_once(site, config):
    first, second = in_lab("class00"), in_lab("class01")
    config(**{"gate.websockets_per_person": "3", "gate.websockets_total": "5"})
    restart_gate()
    log = ErrorLog()
    try:
        spec = {"site": "http://localhost", "per_person": 4, "hold": 10, "ping": 1,
                "people": [{"user": "class00", "headers": websocket_headers(first, "/user/class00/api/events/subscribe")}]}
        holder = subprocess.Popen([JUPYTER_PYTHON, CROWD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        holder.stdin.write(json.dumps(spec))
        holder.stdin.close()
        own = json.loads(holder.stdout.readline())
        site_full = open_websockets(second, "class01", 3)
        holder.wait(timeout=60)
    finally:
        install_config()
        restart_gate()
    FIGURES["limits"] = [f"  websockets_per_person 3: class00 opened {own['opened']} of 4, refused {[f.get('status') for f in own['failed']]}",
                         f"  websockets_total 5: class01 opened {site_full['opened']} of 3, refused {[f.get('status') for f in site_full['failed']]}"]
    assert own["opened"] == 3 and [f["status"] for f in own["failed"]] == [429], own
    assert site_full["opened"] == 2 and [f["status"] for f in site_full["failed"]] == [503], site_full
    assert max(f["seconds"] for f in own["failed"] + site_full["failed"]) < 1.0
    assert log.lines(r"class00 has 3 websockets under way"), log.text()[-2000:]


def test_no_memory_for_another_server_gets_a_clear_page_and_starts_nothing(site, config):
    config(**{"server.start_min_available_memory": '"1T"'})
    sh("apache2ctl", "graceful")  # the front reads hydra.toml when it starts
    time.sleep(1)
    try:
        result = visit(browser_for("crowded"), max_steps=5)
    finally:
        install_config()
        sh("apache2ctl", "graceful")
    assert result.status == 503 and "No room for another notebook server" in result.page, result.trail()
    assert "retry-after" in {k.lower() for k in result.headers}
    assert not server_pids("crowded")
