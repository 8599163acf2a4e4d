"""Issue 5: ipynb-launch start/status/stop with a real Jupyter Server, as the user, in the sandbox."""
import concurrent.futures
import contextlib
import json
import os
import pathlib
import random
import signal
import socket
import stat
import threading
import time

import pytest

from conftest import PREFIX, UPSTREAM, as_user, as_web_server, refresh_mirrors, sh, wait_for

LAUNCH = PREFIX / "ipynb-launch"
STARTED, REUSED, REFUSED, TEMPORARY = 0, 1, 77, 75


def ensure_user(name):
    result = sh(PREFIX / "addldapuser", name, check=False)
    assert result.returncode in (0, 1), result.stderr


def start(name, *extra):
    result = as_user(name, LAUNCH, "start", "--json", *extra)
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result, report


def server_pids(name):
    """The user's Jupyter server processes (not kernels)."""
    out = sh("pgrep", "-u", name, "-f", "jupyter-lab", check=False).stdout
    return sorted(int(p) for p in out.split())


def stop(name):
    as_user(name, LAUNCH, "stop")


def api_status(name, token, as_account="www-data"):
    """GET /user/NAME/api/status over the socket, as the web server would."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", f"/run/hydra/{name}/jupyter.sock",
            "-H", f"Authorization: token {token}", f"http://localhost/user/{name}/api/status"]
    result = as_web_server(*argv) if as_account == "www-data" else as_user(as_account, *argv)
    return result.stdout.strip()


@pytest.fixture()
def user(site):
    """A hydra user with no server running, stopped again afterwards."""
    names = []

    def make(name):
        ensure_user(name)
        stop(name)
        names.append(name)
        return name
    yield make
    for name in names:
        stop(name)


def test_start_returns_only_once_the_server_answers(user):
    name = user("ada")
    refresh_mirrors()
    result, report = start(name)
    assert result.returncode == STARTED, result.stderr
    assert report["outcome"] == "started" and report["base_url"] == "/user/ada/"
    assert report["socket"] == "/run/hydra/ada/jupyter.sock" and len(report["token"]) == 64
    # No sleep here: the server answers the moment start returns.
    assert api_status(name, report["token"]) == "200"
    assert api_status(name, "0" * 64) == "403"


def test_second_start_reuses_the_running_server(user):
    """The rule is ServerLifecycleTests' "local: the person's server answers"; this shows it end to end."""
    name = user("ada")
    _, first = start(name)
    result, second = start(name)
    assert result.returncode == REUSED
    assert (second["pid"], second["token"], second["outcome"]) == (first["pid"], first["token"], "reused")
    assert second["seconds"] < 1


def test_ten_simultaneous_starts_give_exactly_one_server(user):
    """The lock makes the others find the first one's server (ServerLifecycleTests: "a start that lost the race"); end to end here."""
    name = user("herd01")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: start(name), range(10)))
    codes = sorted(r.returncode for r, _ in results)
    assert codes == [STARTED] + [REUSED] * 9, [r.stderr for r, _ in results]
    assert len({(rep["socket"], rep["token"], rep["pid"]) for _, rep in results}) == 1
    assert len(server_pids(name)) == 1


def test_server_killed_with_sigkill_is_replaced_by_a_fresh_one(user):
    """Rule: ServerLifecycleTests "local: stale record, the process ended"; end to end here."""
    name = user("herd02")
    _, first = start(name)
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: first["pid"] not in server_pids(name))
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert second["pid"] != first["pid"] and second["token"] != first["token"]
    assert api_status(name, second["token"]) == "200"
    assert len(server_pids(name)) == 1


def test_a_server_slow_for_a_moment_is_kept_with_its_kernel_not_killed_by_the_next_start(user):
    """Threat: a busy machine (a class's soak, a kernel starting) makes the person's server
    answer late once, and a visit's start (or its deferred sync) ends it with their kernels.
    The server is frozen (SIGSTOP) for 7 s, longer than one probe waits (5 s): the start keeps
    asking (ServerLifecycle.answerPatienceSeconds, 15 s) and reuses it."""
    name = user("herd04")
    _, first = start(name)
    def thaw():
        with contextlib.suppress(ProcessLookupError):  # ended by the start: the assertions say so
            os.kill(first["pid"], signal.SIGCONT)
    os.kill(first["pid"], signal.SIGSTOP)
    thawing = threading.Timer(7.0, thaw)
    thawing.start()
    try:
        began = time.monotonic()
        result, second = start(name)
        waited = time.monotonic() - began
    finally:
        thawing.join()
        thaw()
    assert result.returncode == REUSED, result.stderr
    assert (second["pid"], second["token"]) == (first["pid"], first["token"])
    assert waited >= 6.5, f"the start answered in {waited:.1f} s, before the server was thawed: it did not ask it"
    assert server_pids(name) == [first["pid"]]


def test_a_server_that_never_answers_again_is_replaced_after_the_patience(user):
    """Rule: ServerLifecycleTests "local: hydra's server, hung"; here end to end: a server frozen
    for good (SIGSTOP, never thawed) is ended and a new one answers."""
    name = user("herd05")
    _, first = start(name)
    os.kill(first["pid"], signal.SIGSTOP)
    try:
        result, second = start(name)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGCONT)
    assert result.returncode == STARTED, result.stderr
    assert second["pid"] != first["pid"]
    assert api_status(name, second["token"]) == "200"
    wait_for(lambda: server_pids(name) == [second["pid"]], timeout=20)


def test_stale_socket_and_record_of_a_dead_server_are_cleaned_up(user):
    """Rule: ServerLifecycleTests "local: stale record, the process ended"; the clean-up is shown here."""
    name = user("herd03")
    _, first = start(name)
    os.killpg(first["pid"], signal.SIGKILL)
    wait_for(lambda: not server_pids(name))
    assert os.path.exists(f"/run/hydra/{name}/jupyter.sock")  # the dead server left it behind
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert api_status(name, second["token"]) == "200"


def test_killing_ipynb_launch_at_random_points_never_breaks_the_next_start_or_a_user_file(user):
    """20 trials: kill -9 during the first clone, a sync and a start; then a start must work."""
    name = user("herd04")
    rng = random.Random(4)
    edited = pathlib.Path(f"/home/{name}/tutorials/lesson1.ipynb")
    for trial in range(20):
        proc = sh("bash", "-c", f"setpriv --reuid={name} --regid={name} --init-groups --reset-env {LAUNCH} start --json "
                  f">/dev/null 2>&1 & echo $!").stdout.strip()
        time.sleep(rng.uniform(0.0, 1.6))
        sh("kill", "-9", proc, check=False)
        if trial == 5 and edited.exists():
            edited.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "mine": true}\n')
            os.chown(edited, *[pathlib.Path(f"/home/{name}").stat().st_uid] * 2)
        if trial >= 5 and edited.exists() and "mine" in edited.read_text():
            saved = edited.read_bytes()
        else:
            saved = None
        result, report = start(name)
        assert result.returncode in (STARTED, REUSED), (trial, result.stderr)
        assert api_status(name, report["token"]) == "200", trial
        assert len(server_pids(name)) == 1, trial
        if saved is not None:
            assert edited.read_bytes() == saved, trial
        if trial % 3 == 0:
            stop(name)  # next trial kills a start that must launch a server, not reuse one


def test_runtime_dir_taken_over_by_another_account_is_refused(user):
    name = user("herd05")
    os.chown(f"/run/hydra/{name}", 20002, 33)  # now grace's
    try:
        result, _ = start(name)
        assert result.returncode == REFUSED
        assert "run addldapuser" in result.stderr
        assert not server_pids(name)
    finally:
        sh(PREFIX / "addldapuser", name, check=False)  # repairs it


def test_a_socket_planted_by_another_account_never_receives_the_token(user):
    """Rule: ServerLifecycleTests "local: forged record naming the person's own shell" and "another account's process"; the token's path is shown here."""
    name = user("herd06")
    ensure_user("grace")
    _, first = start(name)
    stop(name)
    # Root (or a bug) leaves a socket of grace's in herd06's directory, with a record naming it.
    received = []
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = f"/run/hydra/{name}/jupyter.sock"
    planted.bind(path)
    os.chown(path, 20002, 20002)
    planted.listen(8)
    planted.settimeout(0.2)
    record = pathlib.Path(f"/run/hydra/{name}/server.json")
    record.write_text(json.dumps({"pid": os.getpid(), "token": first["token"], "started": 0}))
    os.chown(record, pathlib.Path(f"/home/{name}").stat().st_uid, 33)
    stop_listening = threading.Event()

    def listen():
        while not stop_listening.is_set():
            try:
                conn, _ = planted.accept()
                received.append(conn.recv(65536))
                conn.close()
            except OSError:
                pass
    thread = threading.Thread(target=listen)
    thread.start()
    try:
        result, second = start(name)
        assert result.returncode == STARTED, result.stderr
        assert second["pid"] != os.getpid()
    finally:
        stop_listening.set()
        thread.join()
        planted.close()
    assert not any(first["token"].encode() in r or second["token"].encode() in r for r in received)
    assert api_status(name, second["token"]) == "200"


def test_server_listens_only_on_its_socket_with_mode_0660_for_the_web_server(user):
    name = user("herd07")
    ensure_user("grace")
    _, report = start(name)
    info = os.stat(report["socket"])
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == 33
    listening = sh("ss", "-H", "-ltnp").stdout
    assert f"pid={report['pid']}," not in listening  # no TCP port at all
    # Another local user cannot even reach the socket.
    assert api_status(name, report["token"], as_account="grace") != "200"


def test_token_never_appears_in_a_command_line(user):
    name = user("herd08")
    _, report = start(name)
    for pid in sh("pgrep", "-u", name).stdout.split():
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        assert report["token"].encode() not in cmdline


def test_status_and_stop_work_for_the_user(user):
    name = user("herd09")
    _, report = start(name)
    status = json.loads(as_user(name, LAUNCH, "status", "--json").stdout)
    assert status["running"] is True and status["pid"] == report["pid"] and status["memory_bytes"] > 10 << 20
    assert "token" not in status
    result = as_user(name, LAUNCH, "stop", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["stopped"] == "yes"
    assert not server_pids(name)
    assert not os.path.exists(report["socket"])
    assert json.loads(as_user(name, LAUNCH, "status", "--json").stdout)["running"] is False


def test_upstream_down_the_server_still_starts_and_the_json_says_why(user, config):
    name = user("grace")
    config(courses=[("/srv/hydra-test/does-not-exist.git", "main", "missing-course")])
    result, report = start(name)
    assert result.returncode == STARTED, result.stderr
    (course,) = report["sync"]
    assert course["folder"] == "missing-course" and course["error"]


def test_upstream_hanging_the_server_starts_within_the_fetch_timeout(user, config):
    name = user("grace")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts (in the kernel's backlog) and never answers
    port = listener.getsockname()[1]
    try:
        config(courses=[(f"git://127.0.0.1:{port}/course.git", "main", "hanging-course")],
               **{"sync.fetch_timeout_seconds": "2"})
        started = time.monotonic()
        result, report = start(name)
        elapsed = time.monotonic() - started
        assert result.returncode == STARTED, result.stderr
        assert "timed out" in report["sync"][0]["error"]
        assert elapsed < 2 + 10, elapsed
    finally:
        listener.close()


def test_ipynb_launch_refuses_root_and_accounts_outside_the_group(site):
    assert sh(LAUNCH, "start", check=False).returncode == REFUSED
    result = as_user("localclash", LAUNCH, "start")
    assert result.returncode == REFUSED and "not in the group" in result.stderr


def test_idle_server_shuts_itself_down(user, config):
    """Jupyter's own idle shutdown (it checks once a minute)."""
    name = user("herd05")
    config(**{"server.idle_timeout_seconds": "1"})
    _, report = start(name)
    wait_for(lambda: report["pid"] not in server_pids(name), timeout=90, interval=1)
    # The next visit starts a fresh server.
    config()
    result, again = start(name)
    assert result.returncode == STARTED and again["pid"] != report["pid"]
