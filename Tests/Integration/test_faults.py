"""Issue 7, faults: what the user sees, what the admin's log says, that nothing is lost, and that
the next visit after the fault is cleared reaches the lab, through the whole site (Apache with
LDAP Basic auth, mod_fcgid, hydra-cgi, sudo, the helpers, Jupyter, slapd, git).

Users: fran, tim, margaret, john, niklaus, leslie (this file's own directory people).
- fran: a returning user while slapd is down or frozen; two browsers at once;
- tim: a first visit while slapd is down;  margaret: a first visit while slapd is frozen, then
  her runtime directory tampered with;  leslie: a sign-in Apache has not cached while slapd is
  down or frozen, hydra-cgi killed during her start, Apache restarted during her start;
- john: his home full;  niklaus: the course upstream refusing and hanging, his server killed.
The first-visit tests need tim's and margaret's first visits: they come first in this file.

Every test writes one line to figures/faults.txt: what the user saw, what the log said, and how
the next visit went. A test that finds several problems names them all at once (`Problems`).
"""
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (PREFIX, Upstream, as_user, install_config, notebook, reload_apache, runtime_dir_gone, sh, wait_for,
                      wait_until_the_front_answers)
from load_support import (LAUNCH, ErrorLog, ancestors, api, assert_clear_page, assert_in_lab, browser_for, home,
                          kernel_one_plus_one, list_folder, logout, processes, save_notebook, server_pids,
                          server_status, stop_server, visit, write_as, write_figures)

FAULTS = []  # (fault, the user saw, the log said, the next visit)
SLOW_JUPYTER = pathlib.Path("/usr/local/bin/hydra-test-slow-jupyter")
FAULTS_SRV = pathlib.Path("/srv/hydra-test")


@pytest.fixture(scope="module", autouse=True)
def faults_figures(request):
    yield
    if FAULTS:
        width = max(len(f[0]) for f in FAULTS)
        lines = ["faults (issue 7): the user sees | the admin's log says | the next visit"]
        for fault, sees, says, recovered in FAULTS:
            lines.append(f"  {fault:<{width}}  sees: {sees} | log: {says} | next: {recovered}")
        write_figures("faults.txt", lines, request)


def record(fault, sees, says, recovered):
    FAULTS.append((fault, sees, short(says), recovered))


def short(line, limit=170):
    line = re.sub(r"^\[[^\]]+\] ", "", line.strip())  # Apache's time stamp
    line = re.sub(r"^\S+T\S+ ", "", line)             # swift-log's time stamp
    return line if len(line) <= limit else line[:limit - 3] + "..."


def seen(result):
    return f"{result.status} {result.title!r}"


class Problems:
    """Checks that do not stop the test: every broken promise of a fault is reported together."""

    def __init__(self):
        self.found = []

    def check(self, condition, message):
        if not condition:
            self.found.append(message)
        return condition

    def assert_none(self):
        assert not self.found, "\n- " + "\n- ".join(self.found)


# --- the site's configuration, as the admin changes it -----------------------------------------

@pytest.fixture()
def site_config(config):
    """Installs a hydra.toml (hydra_site.config_text overrides) and reloads the front; the
    default configuration is back, and reloaded, afterwards."""
    changed = []

    def apply(**overrides):
        config(**overrides)
        reload_apache()
        changed.append(True)
    yield apply
    if changed:
        install_config()
        reload_apache()


@pytest.fixture()
def slow_start(site_config):
    """slow_start(seconds): every server start takes that much longer (a wrapper that sleeps,
    then runs jupyter-lab), as on a busy machine or with a big first clone."""
    def make(seconds):
        SLOW_JUPYTER.write_text(f'#!/bin/sh\nsleep {seconds}\nexec /opt/hydra/jupyter/bin/jupyter-lab "$@"\n')
        SLOW_JUPYTER.chmod(0o755)
        site_config(**{"server.command": f'["{SLOW_JUPYTER}"]'})
    yield make
    SLOW_JUPYTER.unlink(missing_ok=True)


# --- what every fault test needs ----------------------------------------------------------------

def has_account(name):
    return any(line.split(":")[0] == name for line in pathlib.Path("/etc/passwd").read_text().splitlines())


def first_visit_of(name):
    assert not has_account(name), (f"{name} already has an account: this test is about {name}'s first visit, "
                                   f"run it before any other test signs {name} in")
    return name


def in_lab_with_a_note(user, note_path, text):
    """The user reaches the lab and saves a notebook (their own work before the fault)."""
    browser = browser_for(user)
    result = visit(browser)
    assert_in_lab(result, user)
    status, body = save_notebook(browser, user, note_path, text)
    assert status in (200, 201), body
    settle()  # what the visit left for after its answer (the sync) is done before the fault
    return browser


def note_text(user, note_path):
    """The markdown of a notebook in the user's home, as saved (None if it is not there)."""
    import json
    path = home(user) / note_path
    if not path.exists():
        return None
    return "".join(json.loads(path.read_text())["cells"][0]["source"])


def hydra_processes(kinds=("ipynb-launch", "addldapuser", "sudo")):
    """Helpers still running (none should be once a visit has ended)."""
    return {pid: p[2] for pid, p in processes().items()
            if any(k in p[2].split(" ")[0] for k in kinds) and p[3] != "Z"}


def zombies():
    return {pid: p[1] for pid, p in processes().items() if p[3] == "Z"}


def settle(timeout=120):
    """Waits until no helper runs (a visit to a running server syncs after its answer)."""
    wait_for(lambda: not hydra_processes(), timeout=timeout, interval=0.2)


def start_in_background(browser):
    """A visit in another thread (the browser waiting while something else happens)."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", visit(browser)), daemon=True)
    thread.start()
    return thread, box


def starting_helper(user):
    """The `ipynb-launch start` working for `user`, once it runs."""
    for pid, (owner, _, cmd, state, _) in processes().items():
        if owner == user and "ipynb-launch start" in cmd and state != "Z":
            return pid
    return None


# --- slapd down and back; slapd frozen ------------------------------------------------------------

def test_slapd_down_returning_user_keeps_the_lab_and_a_first_visit_is_asked_to_retry_then_both_work(site, directory):
    """fran (a lab, Apache's LDAP cache knows her) keeps working; tim (signed in a moment ago,
    never visited) gets a "try again" page and no half-made account; both reach the lab after."""
    tim = first_visit_of("tim")
    reload_apache()  # an empty LDAP cache: only what happens in this test is in it
    fran = in_lab_with_a_note("fran", "outage.ipynb", "before the outage")
    tim_browser = browser_for(tim)
    assert tim_browser.get("/hydra/whoami")[0] == 200  # signed in (Apache remembers the password)
    log = ErrorLog()
    problems = Problems()
    directory.stop()
    try:
        fran_during = visit(browser_for("fran"))
        saved_during = save_notebook(fran, "fran", "outage.ipynb", "during the outage")
        tim_during = visit(tim_browser)
        accounts_during = pathlib.Path("/etc/passwd").read_text()
    finally:
        directory.start()

    problems.check(fran_during.in_lab("fran"), f"fran did not reach her lab while slapd was down: {fran_during.trail()}")
    problems.check(saved_during[0] in (200, 201), f"fran could not save while slapd was down: {saved_during}")
    try:
        assert_clear_page(tim_during, 503, "Please try again")
        problems.check(tim_during.headers.get("Retry-After"), "the 503 has no Retry-After")
    except AssertionError as error:
        problems.check(False, f"tim's first visit while slapd was down: {error}")
    problems.check(f"\n{tim}:" not in "\n" + accounts_during, "tim's account was created without the directory")
    said = ""
    try:
        said = log.wait_for(r"user=tim\b.*addldapuser could not finish: .*LDAP unavailable.*Can't contact LDAP server", timeout=10)
    except AssertionError as error:
        problems.check(False, str(error))

    tim_after = visit(tim_browser)
    problems.check(tim_after.in_lab(tim), f"tim did not reach the lab once slapd was back: {tim_after.trail()}")
    problems.check(sh("id", "-u", tim, check=False).stdout.strip() == "20122", "tim's account does not have his directory UID")
    fran_after = visit(browser_for("fran"))
    problems.check(fran_after.in_lab("fran"), f"fran did not reach the lab once slapd was back: {fran_after.trail()}")
    problems.check(note_text("fran", "outage.ipynb") == "during the outage", "fran's notebook saved during the outage is not on disk")
    record("slapd down (returning user, first visit)",
           f"fran {seen(fran_during)}; tim {seen(tim_during)} Retry-After {tim_during.headers.get('Retry-After')}",
           said, f"tim {seen(tim_after)}, fran {seen(fran_after)}")
    problems.assert_none()


def test_slapd_frozen_returning_user_keeps_the_lab_and_a_first_visit_is_answered_after_the_ldap_timeout(site, directory):
    """A frozen slapd accepts connections and never answers: hydra's LDAP timeout (2 s here) ends
    margaret's first visit with a "try again" page instead of a hanging browser."""
    margaret = first_visit_of("margaret")
    reload_apache()
    fran = in_lab_with_a_note("fran", "frozen.ipynb", "before the freeze")
    margaret_browser = browser_for(margaret)
    assert margaret_browser.get("/hydra/whoami")[0] == 200
    log = ErrorLog()
    problems = Problems()
    directory.freeze()
    try:
        fran_during = visit(browser_for("fran"))
        saved_during = save_notebook(fran, "fran", "frozen.ipynb", "during the freeze")
        margaret_during = visit(margaret_browser)
        accounts_during = pathlib.Path("/etc/passwd").read_text()
    finally:
        directory.thaw()

    problems.check(fran_during.in_lab("fran"), f"fran did not reach her lab while slapd was frozen: {fran_during.trail()}")
    problems.check(saved_during[0] in (200, 201), f"fran could not save while slapd was frozen: {saved_during}")
    try:
        assert_clear_page(margaret_during, 503, "Please try again")
    except AssertionError as error:
        problems.check(False, f"margaret's first visit while slapd was frozen: {error}")
    problems.check(f"\n{margaret}:" not in "\n" + accounts_during, "margaret's account was created without the directory")
    said = ""
    try:
        said = log.wait_for(r"user=margaret\b.*addldapuser could not finish: .*LDAP unavailable", timeout=10)
    except AssertionError as error:
        problems.check(False, str(error))

    margaret_after = visit(margaret_browser)
    problems.check(margaret_after.in_lab(margaret), f"margaret did not reach the lab after the thaw: {margaret_after.trail()}")
    problems.check(note_text("fran", "frozen.ipynb") == "during the freeze", "fran's notebook saved during the freeze is not on disk")
    record("slapd frozen (returning user, first visit)",
           f"fran {seen(fran_during)}; margaret {seen(margaret_during)} after {margaret_during.seconds:.1f} s",
           said, f"margaret {seen(margaret_after)}")
    problems.assert_none()


def test_slapd_down_a_sign_in_apache_has_not_cached_gets_an_error_page_and_the_admin_log_names_ldap(site, directory):
    """What everyone whose password Apache has not checked lately sees: Apache's own answer
    (mod_authnz_ldap), and the admin must find the reason in the error log."""
    reload_apache()  # leslie's password is not in Apache's LDAP cache
    log = ErrorLog()
    directory.stop()
    try:
        during = visit(browser_for("leslie"), "/hydra/whoami")
    finally:
        directory.start()
    problems = Problems()
    problems.check(during.status in (500, 502, 503), f"while slapd was down leslie got {during.trail()}")
    problems.check(not re.search(r"Traceback|\.swift:\d+", during.page), "a trace on the page")
    said = ""
    try:
        said = log.wait_for(r"leslie.*(LDAP|ldap)|(LDAP|ldap).*leslie", timeout=5)
    except AssertionError:
        problems.check(False, "Apache's error logs do not say that leslie's sign-in failed because LDAP was down "
                              f"(they gained: {log.text()[-1500:]!r})")
    after = visit(browser_for("leslie"), "/hydra/whoami")
    problems.check(after.status == 200, f"leslie could not sign in once slapd was back: {after.trail()}")
    record("slapd down (sign-in not cached by Apache)", seen(during), said or "(nothing)", seen(after))
    problems.assert_none()


def test_slapd_frozen_a_sign_in_apache_has_not_cached_is_answered_within_two_minutes(site, directory):
    """A frozen directory must not leave the browser waiting for minutes (Browser's timeout: 120 s)."""
    reload_apache()
    log = ErrorLog()
    directory.freeze()
    started = time.monotonic()
    try:
        try:
            during = visit(browser_for("leslie"), "/hydra/whoami")
            answered = f"{seen(during)} after {time.monotonic() - started:.0f} s"
        except (TimeoutError, OSError) as error:
            during, answered = None, f"no answer after {time.monotonic() - started:.0f} s ({type(error).__name__})"
    finally:
        directory.thaw()
    after = visit(browser_for("leslie"), "/hydra/whoami")
    said = next(iter(log.lines(r"leslie|LDAP|ldap")), "(nothing)")
    record("slapd frozen (sign-in not cached by Apache)", answered, said, seen(after))
    assert during is not None, f"leslie's sign-in while slapd was frozen: {answered}"
    assert during.status in (500, 502, 503) and after.status == 200, (during.trail(), after.trail())


# --- the course upstream refusing and hanging -----------------------------------------------------

class GitDaemon:
    """The course's upstream on git://127.0.0.1:PORT/, which can refuse (nothing listening),
    hang (a listener that never answers) and come back."""

    def __init__(self, base):
        self.base = base
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.process = None
        self.silent = None

    def serve(self):
        self.refuse()
        self.process = subprocess.Popen(["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}",
                                         f"--base-path={self.base}", "--export-all", str(self.base)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=20)

    def _answers(self):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def refuse(self):
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        if self.silent:
            self.silent.close()
            self.silent = None

    def hang(self):
        self.refuse()
        self.silent = socket.socket()
        self.silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.silent.bind(("127.0.0.1", self.port))
        self.silent.listen(64)  # connections complete in the kernel's backlog; nothing ever answers

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}"


@pytest.fixture()
def git_daemon():
    daemon = GitDaemon(FAULTS_SRV)
    yield daemon
    daemon.refuse()


def test_course_upstream_refusing_then_hanging_never_keeps_the_user_from_the_lab_and_the_update_arrives_later(site_config, git_daemon):
    user = "niklaus"
    course = Upstream(FAULTS_SRV / "faults-net.git").create({"lesson1.ipynb": notebook("lesson one"), "README.md": "# Course\n"})
    git_daemon.serve()
    url = git_daemon.url("faults-net.git")
    site_config(courses=((url, "main", "tutorials"),),
                **{"sync.fetch_interval_seconds": "0", "sync.fetch_timeout_seconds": "3", "sync.visit_sync_interval_seconds": "0"})
    browser = browser_for(user)
    assert_in_lab(visit(browser), user)
    wait_for(lambda: (home(user) / "tutorials/lesson1.ipynb").exists(), timeout=60)
    # The user's work: their answer in the course's notebook, and a notebook of their own.
    assert save_notebook(browser, user, "tutorials/lesson1.ipynb", "niklaus's answer")[0] == 200
    assert save_notebook(browser, user, "mine.ipynb", "niklaus's own")[0] in (200, 201)
    # The teacher publishes an update while the upstream is unreachable.
    course.commit({"lesson1.ipynb": notebook("lesson one, corrected"), "lesson2.ipynb": notebook("lesson two")})

    problems = Problems()
    lines = {}
    for fault, make, pattern in (("refusing", git_daemon.refuse, r"unable to connect|Connection refused"),
                                 ("hanging", git_daemon.hang, r"timed out")):
        settle()  # the previous visit's sync is done: this visit's own sync runs
        make()
        log = ErrorLog()
        result = visit(browser)
        problems.check(result.in_lab(user), f"upstream {fault}: {user} did not reach the lab: {result.trail()}")
        try:
            lines[fault] = (seen(result), log.wait_for(rf"mirror of {re.escape(url)} not refreshed: .*({pattern})", timeout=30))
        except AssertionError as error:
            lines[fault] = (seen(result), "(nothing)")
            problems.check(False, f"upstream {fault}: {error}")
        problems.check(note_text(user, "tutorials/lesson1.ipynb") == "niklaus's answer", f"upstream {fault}: the user's answer changed")
        problems.check(not (home(user) / "tutorials/lesson2.ipynb").exists(), f"upstream {fault}: lesson2 arrived from nowhere")

    git_daemon.serve()
    settle()  # the last sync (against the hanging upstream) has given up
    after = visit(browser)
    problems.check(after.in_lab(user), f"upstream back: {user} did not reach the lab: {after.trail()}")
    try:
        wait_for(lambda: (home(user) / "tutorials/lesson2.ipynb").exists()
                 and (home(user) / "tutorials/lesson1.upstream.ipynb").exists(), timeout=60, interval=0.5)
        arrived = "the update arrived beside the user's edit"
    except AssertionError:
        arrived = "the update did not arrive"
        problems.check(False, f"the course update did not arrive once the upstream was back: {sorted(os.listdir(home(user) / 'tutorials'))}")
    problems.check(note_text(user, "tutorials/lesson1.ipynb") == "niklaus's answer", "the user's answer changed when the update arrived")
    problems.check(note_text(user, "mine.ipynb") == "niklaus's own", "the user's own notebook changed")
    for fault, (sees, said) in lines.items():
        record(f"git upstream {fault}", sees, said, f"{seen(after)}, {arrived}")
    problems.assert_none()


# --- the user's server killed with -9 between visits ----------------------------------------------

def test_server_killed_with_sigkill_between_visits_next_visit_starts_a_fresh_one_and_work_is_kept(site):
    user = "niklaus"
    browser = in_lab_with_a_note(user, "killed.ipynb", "saved before the kill")
    write_as(user, home(user) / "notes/todo.txt", "written in a terminal\n")
    old = server_status(user)["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: old not in server_pids(user), timeout=30)

    log = ErrorLog()
    problems = Problems()
    # The lab still open in a tab asks its server for something: "not running, retry" at once.
    status, body = api(browser, user, "GET", "status")
    problems.check(status == 503, f"the open tab's API call got {status} {body[:200]}")
    # Reloading the tab (a page visit) leads through the front, which starts a fresh server.
    tab = visit(browser, f"/user/{user}/lab")
    problems.check(tab.in_lab(user), f"reloading the open tab did not lead back into the lab: {tab.trail()}")
    problems.check(not re.search(r"Traceback|\.swift:\d+", tab.page), "a trace on the page")
    said = ""
    try:
        said = log.wait_for(rf"user={user}\b.*visit: started server", timeout=10)
    except AssertionError as error:
        problems.check(False, str(error))
    # The next visit to the site: the same fresh server, the user's work still there.
    after = visit(browser)
    problems.check(after.in_lab(user), f"the next visit did not reach the lab: {after.trail()}")
    pids = server_pids(user)
    problems.check(len(pids) == 1 and old not in pids, f"servers after the visit: {pids} (killed: {old})")
    problems.check(note_text(user, "killed.ipynb") == "saved before the kill", "the notebook saved before the kill changed")
    problems.check((home(user) / "notes/todo.txt").read_bytes() == b"written in a terminal\n", "the user's file changed")
    status, names = list_folder(browser, user)
    problems.check(status == 200 and "killed.ipynb" in names, f"the lab does not list the notebook: {status} {names}")
    record("user's server killed -9 between visits", f"open tab: {seen(tab)}", said, seen(after))
    problems.assert_none()


# --- hydra-gate killed (outside systemd: gate-detached's supervisor; the VM tier has the unit) ----

def test_hydra_gate_killed_is_started_again_and_the_lab_answers_within_10_s(site):
    """Outside systemd nothing started hydra-gate again after it died: every /user/NAME/ request
    got Apache's 503 until an admin noticed. hydra-detached's supervisor now does what the unit's
    Restart=always does."""
    user = "niklaus"
    browser = browser_for(user)
    assert visit(browser).in_lab(user)
    gate_pidfile = pathlib.Path("/run/hydra/gate.pid")
    old = int(gate_pidfile.read_text())
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    answers = []

    def lab_answers():
        status, _ = api(browser, user, "GET", "status")
        answers.append(status)
        return status == 200
    wait_for(lab_answers, timeout=10, interval=0.2)
    back_after = time.monotonic() - killed
    new = int(gate_pidfile.read_text())
    assert new != old and pathlib.Path(f"/proc/{new}").exists()
    said = next((line for line in pathlib.Path("/var/log/hydra/gate.log").read_text().splitlines()
                 if "hydra-detached: hydra-gate ended" in line), "")
    assert "exit status 137" in said, said
    record("hydra-gate killed -9 (no systemd)", f"API calls meanwhile: {sorted(set(answers))}", said,
           f"200 after {back_after:.1f} s")


# --- a machine that cannot mount the per-person tmpfs ---------------------------------------------

def front_restarted(*prefix):
    """The front daemon stopped, then started again (with its supervisor) under `prefix` (a
    command that runs the next one)."""
    sh(PREFIX / "hydra-detached", "front", "stop")
    sh(*prefix, PREFIX / "hydra-detached", "front", "start")
    wait_until_the_front_answers(timeout=30)


@pytest.fixture()
def no_mount_rights():
    """The front, and so addldapuser (through sudo), without CAP_SYS_ADMIN in its bounding set:
    root's mount(2) is refused, as in a container that may not mount (or whose PID 1's
    namespace root may not enter). Afterwards the front runs as before, and the fallback's note
    (which lives until a reboot) and the plain folders made meanwhile are gone."""
    people = []
    front_restarted("setpriv", "--bounding-set", "-sys_admin")
    yield people
    front_restarted()
    for user in people:
        stop_server(user)
        runtime_dir_gone(user)
    pathlib.Path("/run/hydra/.no-tmpfs").unlink(missing_ok=True)


def test_no_tmpfs_on_this_machine_the_first_visit_reaches_the_lab_in_a_plain_folder_and_the_log_says_why_once(site, no_mount_rights):
    """Threat: a host (a container) where the per-person tmpfs cannot be mounted answered every
    first visit with 500. Now the visit goes on with a plain folder, and the admin is told why,
    once; the front, the gate and ipynb-launch agree that a plain folder is what to expect."""
    log = ErrorLog()
    problems = Problems()
    for user in ("konrad", "annie"):
        no_mount_rights.append(user)
        stop_server(user)
        runtime_dir_gone(user)
        browser = browser_for(user)
        result = visit(browser)
        problems.check(result.in_lab(user), f"{user}'s visit did not reach the lab: {result.trail()}")
        folder = pathlib.Path(f"/run/hydra/{user}")
        problems.check(folder.is_dir() and not folder.is_mount(), f"{folder} is not a plain folder")
        status, _ = api(browser, user, "GET", "status")
        problems.check(status == 200, f"{user}'s API call through the gate got {status}")
    said = ""
    try:
        said = log.wait_for(r"addldapuser: .*no tmpfs for the runtime folders", timeout=10)
    except AssertionError as error:
        problems.check(False, str(error))
    problems.check("Operation not permitted" in said, f"the log does not say why: {said}")
    problems.check(len(log.lines(r"no tmpfs for the runtime folders")) == 1, "the warning was not said exactly once")
    note = pathlib.Path("/run/hydra/.no-tmpfs")
    problems.check(note.stat().st_uid == 0 and "Operation not permitted" in note.read_text(), "no root-owned note with the reason")
    check = as_user("annie", LAUNCH, "check")
    problems.check(check.returncode == 0 and "plain directory, not a tmpfs" in check.stdout + check.stderr
                   and "Jupyter in /opt/hydra/jupyter: jupyter_server 2." in check.stdout + check.stderr,
                   f"ipynb-launch check does not say it: {check.stdout}{check.stderr}")
    again = visit(browser)
    problems.check(again.in_lab("annie"), f"annie's next visit did not reach the lab: {again.trail()}")
    record("no tmpfs possible (no CAP_SYS_ADMIN)", seen(result), said, seen(again))
    problems.assert_none()


# --- the front (hydra-cgi) killed mid-request; Apache graceful restart during a start --------------------------

def test_front_killed_during_a_start_the_user_gets_an_error_page_and_the_next_visit_reaches_the_lab(site, slow_start):
    user = "leslie"
    in_lab_with_a_note(user, "front-killed.ipynb", "saved before")
    slow_start(8)
    stop_server(user)
    log = ErrorLog()
    thread, box = start_in_background(browser_for(user))
    wait_for(lambda: starting_helper(user), timeout=60)
    table = processes()
    helper = starting_helper(user)
    fronts = [pid for pid in ancestors(helper, table) if table[pid][2].startswith(str(PREFIX / "hydra-cgi"))]
    assert fronts, f"no hydra-cgi process is running {user}'s start: {[table[p][2] for p in ancestors(helper, table)]}"
    os.kill(fronts[0], signal.SIGKILL)
    thread.join(300)
    during = box["result"]

    problems = Problems()
    problems.check(during.status in (500, 502, 503), f"the request whose front was killed got {during.trail()}")
    problems.check(not re.search(r"Traceback|\.swift:\d+|Fatal error", during.page), "a trace on the page")
    said = ""
    try:
        said = log.wait_for(r"hydra-detached: hydra-cgi ended \(exit status 137\)", timeout=10)
    except AssertionError as error:
        problems.check(False, str(error))
    # The supervisor starts the front again (hydra-detached; under systemd, the unit's Restart=).
    back = time.monotonic()
    wait_until_the_front_answers(timeout=15)
    said += f"; the front answered again {time.monotonic() - back:.1f} s later"
    after = visit(browser_for(user))
    problems.check(after.in_lab(user), f"the next visit did not reach the lab: {after.trail()}")
    problems.check(len(server_pids(user)) == 1, f"servers: {server_pids(user)}")
    problems.check(note_text(user, "front-killed.ipynb") == "saved before", "the user's notebook changed")
    try:
        wait_for(lambda: not hydra_processes() and not zombies(), timeout=60, interval=0.5)
    except AssertionError:
        problems.check(False, f"left behind: helpers {hydra_processes()}, zombies {zombies()}")
    record("hydra-cgi killed -9 mid-request", seen(during), said, seen(after))
    problems.assert_none()


def test_apache_graceful_restart_during_a_start_the_visit_still_reaches_the_lab(site, slow_start):
    """`apache2ctl graceful` (a configuration change, the nightly log rotation) while a start
    takes 25 s: Apache's old worker holds the proxied request to the front until it is answered
    (the front itself is not restarted). The browser must still end in the lab (a "starting"
    page that reloads is fine), not in Apache's 500."""
    user = "leslie"
    browser = in_lab_with_a_note(user, "graceful.ipynb", "saved before")
    slow_start(25)
    stop_server(user)
    log = ErrorLog()
    thread, box = start_in_background(browser)
    wait_for(lambda: starting_helper(user), timeout=60)
    sh("apache2ctl", "graceful")
    thread.join(300)
    during = box["result"]

    problems = Problems()
    problems.check(during.in_lab(user), f"the visit during the graceful restart: {during.trail()}")
    said = ""
    try:
        said = log.wait_for(r"AH00493: SIGUSR1 received", timeout=30)
    except AssertionError as error:
        problems.check(False, str(error))
    after = visit(browser)
    problems.check(after.in_lab(user), f"the next visit: {after.trail()}")
    problems.check(len(server_pids(user)) == 1, f"servers: {server_pids(user)}")
    problems.check(note_text(user, "graceful.ipynb") == "saved before", "the user's notebook changed")
    try:
        wait_for(lambda: not hydra_processes() and not zombies(), timeout=60, interval=0.5)
    except AssertionError:
        problems.check(False, f"left behind: helpers {hydra_processes()}, zombies {zombies()}")
    said = "; ".join([said] + log.lines(rf"terminating forcefully|user={user}\b")[:2])
    record("Apache graceful restart during a 25 s start", seen(during), said, seen(after))
    problems.assert_none()


# --- a user's home full -------------------------------------------------------------------------

@pytest.fixture()
def full_home():
    """Puts the user's home on a small tmpfs (its files copied over), and fills it up."""
    mounted = []

    def make(user, size="8m"):
        target = home(user)
        copy = pathlib.Path(f"/tmp/hydra-test-home-{user}")
        shutil.rmtree(copy, ignore_errors=True)
        sh("cp", "-a", f"{target}/.", copy)
        uid = target.stat().st_uid
        sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700,uid={uid},gid={uid}", f"hydra-test-home-{user}", target)
        mounted.append((user, target, copy))
        sh("cp", "-a", f"{copy}/.", target)
        filler = target / "filler.bin"
        result = as_user(user, "dd", "if=/dev/zero", f"of={filler}", "bs=64k")
        assert "No space left on device" in result.stderr, result.stderr
        return filler
    yield make
    for user, target, copy in mounted:
        stop_server(user)
        sh("umount", "--lazy", target, check=False)
        shutil.rmtree(copy, ignore_errors=True)


def test_home_full_nothing_is_lost_the_user_is_told_and_the_lab_is_back_once_there_is_space(site_config, full_home):
    user = "john"
    course = Upstream(FAULTS_SRV / "faults-course.git").create({"lesson1.ipynb": notebook("lesson one"), "README.md": "# Course\n"})
    site_config(courses=((str(course.path), "main", "tutorials"),),
                **{"sync.fetch_interval_seconds": "0", "sync.visit_sync_interval_seconds": "0"})
    browser = browser_for(user)
    assert_in_lab(visit(browser), user)
    wait_for(lambda: (home(user) / "tutorials/lesson1.ipynb").exists(), timeout=60)
    assert save_notebook(browser, user, "tutorials/lesson1.ipynb", "john's answer")[0] == 200
    assert save_notebook(browser, user, "thesis.ipynb", "chapter one")[0] in (200, 201)
    filler = full_home(user)
    course.commit({"lesson1.ipynb": notebook("lesson one, corrected"), "lesson2.ipynb": notebook("lesson two")})
    problems = Problems()
    log = ErrorLog()

    # 1. The server runs, the home is full: saving fails, and the saved version stays whole.
    save_full, body = save_notebook(browser, user, "thesis.ipynb", "chapter two " * 50000)
    problems.check(save_full >= 400, f"saving into a full home answered {save_full}")
    problems.check(note_text(user, "thesis.ipynb") == "chapter one", "the notebook on disk is not the last saved version")
    # 2. A visit while the server runs: the lab, the course sync cannot write, the admin is told.
    reused = visit(browser)
    problems.check(reused.in_lab(user), f"a visit with the server running: {reused.trail()}")
    sync_said = ""
    try:
        sync_said = log.wait_for(rf"{user}.*(No space left on device|ENOSPC|full)", timeout=30)
    except AssertionError:
        problems.check(False, f"Apache's error logs do not say that {user}'s home is full (the course sync could not write); "
                              f"they gained: {log.text()[-1500:]!r}")
    # 3. A start in a full home: the lab, or a page that says what is wrong.
    settle()
    stop_server(user)
    log = ErrorLog()
    started = visit(browser)
    start_said = next(iter(log.lines(rf"user={user}\b")), "(nothing)")
    if not started.in_lab(user):
        visible = re.sub(r"<[^>]+>", " ", started.page)
        problems.check(re.search(r"\b(full|space|quota)\b", visible, re.I),
                       f"a start in a full home ended in {started.status} {started.title!r}, a page that does not say the home is full: "
                       f"{' '.join(visible.split())[:300]!r}")
        problems.check(not re.search(r"Traceback|\.swift:\d+", started.page), "a trace on the page")
    for rel, text in (("tutorials/lesson1.ipynb", "john's answer"), ("thesis.ipynb", "chapter one")):
        problems.check(note_text(user, rel) == text, f"{rel} is not as the user left it")
    empty = [str(p) for p in home(user).rglob("*.ipynb") if p.is_file() and p.stat().st_size == 0]
    problems.check(not empty, f"empty notebooks in the full home: {empty}")

    # 4. Space again (the user deletes a file): the lab, saving works, the update arrives.
    filler.unlink()
    after = visit(browser)
    problems.check(after.in_lab(user), f"the visit once there was space: {after.trail()}")
    status, _ = save_notebook(browser, user, "thesis.ipynb", "chapter two")
    problems.check(status == 200 and note_text(user, "thesis.ipynb") == "chapter two", f"saving once there was space: {status}")
    try:
        wait_for(lambda: (home(user) / "tutorials/lesson2.ipynb").exists(), timeout=60, interval=0.5)
    except AssertionError:
        problems.check(False, "the course update did not arrive once there was space")
    problems.check(note_text(user, "tutorials/lesson1.ipynb") == "john's answer", "the user's answer changed")
    record("a user's home full", f"save {save_full}; visit {seen(reused)}; start {seen(started)}",
           sync_said or start_said, seen(after))
    problems.assert_none()


# --- the runtime directory tampered with ---------------------------------------------------------

def tamper_owner(path):
    os.chown(path, 4242, 4242)


def tamper_mode(path):
    os.chmod(path, 0o777)


def tamper_symlink(path):
    elsewhere = pathlib.Path("/run/hydra-test-elsewhere")
    shutil.rmtree(elsewhere, ignore_errors=True)
    elsewhere.mkdir()
    runtime_dir_gone(path.name)
    os.symlink(elsewhere, path)


def tamper_removed(path):
    runtime_dir_gone(path.name)  # as after a reboot: /run is empty


def tamper_record(path):
    record_file = path / "server.json"
    record_file.write_text('{"pid": %d, "token": "%s", "started": 0}' % (os.getpid(), "0" * 64))


@pytest.mark.parametrize("tamper", [tamper_owner, tamper_mode, tamper_symlink, tamper_removed, tamper_record],
                         ids=["owner", "mode", "symlink", "removed", "forged-record"])
def test_runtime_dir_tampered_with_is_repaired_the_admin_is_told_and_the_user_reaches_their_own_lab(site, tamper):
    user = "margaret"
    if not has_account(user):
        pytest.fail("margaret's account is made by the slapd-frozen test; run the file in order")
    browser = in_lab_with_a_note(user, "tamper.ipynb", "saved before")
    server_before = server_pids(user)
    runtime = pathlib.Path(f"/run/hydra/{user}")
    log = ErrorLog()
    tamper(runtime)
    # A visit after sync.visit_sync_interval_seconds: the front answers (within it, Apache sends a
    # returning browser to its lab without the front; test_front covers that).
    browser.cookies.pop("hydra-recent", None)
    after = visit(browser)
    settle()
    again = visit(browser)  # whatever ran after the answer (the sync, a replaced server) is done

    problems = Problems()
    problems.check(after.in_lab(user), f"after the tampering ({tamper.__name__}): {after.trail()}")
    problems.check(again.in_lab(user), f"the visit after that: {again.trail()}")
    info = os.lstat(runtime)
    problems.check(not runtime.is_symlink() and info.st_uid == 20123 and info.st_gid == 33 and info.st_mode & 0o7777 == 0o2750,
                   f"{runtime} was not repaired: uid {info.st_uid} gid {info.st_gid} mode {oct(info.st_mode & 0o7777)}")
    problems.check(len(server_pids(user)) == 1, f"servers: {server_pids(user)}")
    problems.check(note_text(user, "tamper.ipynb") == "saved before", "the user's notebook changed")
    status, body = save_notebook(browser, user, "tamper.ipynb", "saved after")
    problems.check(status == 200, f"saving after the repair: {status} {body[:200]}")
    if tamper is tamper_record:
        said = next(iter(log.lines(rf"user={user}\b")), "")
        problems.check(said, "nothing in the log about margaret's visit")
    else:
        said = next(iter(log.lines(rf"/run/hydra/{user}\b")), "")
        problems.check(said, f"Apache's error logs do not say that {runtime} was repaired ({tamper.__name__}); "
                             f"they gained: {log.text()[-1500:]!r}")
    replaced = "server replaced" if server_pids(user) != server_before else "same server"
    record(f"runtime dir tampered: {tamper.__name__.removeprefix('tamper_')}", seen(after), said or "(nothing)",
           f"{seen(again)}, {replaced}" + ("" if not problems.found else f"; {len(problems.found)} problem(s)"))
    problems.assert_none()


# --- two browsers of one user at once --------------------------------------------------------------

def test_two_browsers_of_one_user_at_once_share_one_server_and_keep_both_works(site):
    user = "fran"
    assert_in_lab(visit(browser_for(user)), user)
    settle()
    stop_server(user)
    log = ErrorLog()
    browsers = [browser_for(user), browser_for(user)]
    barrier = threading.Barrier(2)
    results = [None, None]

    def go(i):
        barrier.wait()
        results[i] = visit(browsers[i])
    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)

    problems = Problems()
    for i, result in enumerate(results):
        problems.check(result.in_lab(user), f"browser {i}: {result.trail()}")
    problems.check(len(server_pids(user)) == 1, f"servers: {server_pids(user)}")
    for i, b in enumerate(browsers):
        status, _ = save_notebook(b, user, f"browser{i}.ipynb", f"from browser {i}")
        problems.check(status in (200, 201), f"browser {i} could not save: {status}")
        ok, output = kernel_one_plus_one(b, user)
        problems.check(ok, f"browser {i}'s kernel: {output[-500:]}")
    # One browser logs out: the other goes on, and the first comes back.
    status, headers, _ = logout(browsers[0], user)
    problems.check(status == 302, f"logout: {status}")
    problems.check(list_folder(browsers[1], user)[0] == 200, "the other browser lost its session when the first logged out")
    back = visit(browsers[0])
    problems.check(back.in_lab(user), f"back after logout: {back.trail()}")
    for i in range(2):
        problems.check(note_text(user, f"browser{i}.ipynb") == f"from browser {i}", f"browser {i}'s notebook is not on disk")
    starts = log.lines(rf"user={user}\b.*\bstarted\b")
    problems.check(len(starts) <= 1, f"more than one start in the log: {starts}")
    said = next(iter(log.lines(rf"hydra\.cgi: .*user={user}\b")), "(nothing)")
    record("two browsers of one user at once", " + ".join(seen(r) for r in results) + " (" +
           " / ".join(str(len(r.steps)) + " steps" for r in results) + ")", said, seen(back))
    problems.assert_none()
