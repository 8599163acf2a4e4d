"""Issue 9: how servers are supervised and limited. This machine has no systemd as PID 1, so the
mode chosen is "detached" with setrlimit limits, observed here on real Jupyter servers and
kernels; the systemd unit hydra would start is checked with systemd-analyze verify."""
import json
import os
import pathlib
import re
import subprocess
import tempfile

import pytest

from conftest import FRONT_LOG, PREFIX, REPO, as_user, sh, wait_for

LAUNCH = PREFIX / "ipynb-launch"
KERNEL = ["/opt/hydra/jupyter/bin/python", REPO / "Tests/Integration/kernel_roundtrip.py"]


@pytest.fixture()
def limited(site, config):
    """Installs [limits] settings, makes the accounts, and stops their servers afterwards."""
    names = []

    def make(*accounts, **limits):
        config(**{f"limits.{key}": value for key, value in limits.items()})
        for name in accounts:
            assert sh(PREFIX / "addldapuser", name, check=False).returncode in (0, 1)
            as_user(name, LAUNCH, "stop")
            names.append(name)
    yield make
    for name in names:
        as_user(name, LAUNCH, "stop")


def start(name):
    result = as_user(name, LAUNCH, "start", "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return json.loads(result.stdout)


def run_in_kernel(name, token, code):
    """Runs `code` in a new kernel of NAME's server (over its socket) and returns the result line."""
    return run_in_kernel_showing(name, token, code)[0]


def run_in_kernel_showing(name, token, code):
    """run_in_kernel, and what the cell showed besides: its streams and tracebacks, without colours."""
    result = sh(*KERNEL, "http://localhost", name, "--unix-socket", f"/run/hydra/{name}/jupyter.sock",
                "--token", token, "--code", code, "--expect", "-", "--show-printed", check=False, timeout=180)
    lines = [line for line in result.stdout.splitlines() if line.startswith("execute_result:")]
    printed = [line for line in result.stdout.splitlines() if line.startswith("printed:")]
    assert lines and printed, result.stdout + result.stderr
    shown = re.sub(r"\x1b\[[0-9;]*m", "", json.loads(printed[0].removeprefix("printed:")))
    return lines[0].removeprefix("execute_result:").split("| delete")[0].strip(), shown


def process_limits(pid):
    """/proc/PID/limits as {name: soft limit}."""
    limits = {}
    for line in pathlib.Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name = line[:26].strip()
        limits[name] = line[26:].split()[0]
    return limits


def test_detached_mode_is_chosen_without_systemd_and_reported_to_user_and_admin(limited):
    limited("joan")
    report = start("joan")
    assert report["supervisor"] == "detached"
    status = json.loads(as_user("joan", LAUNCH, "status", "--json").stdout)
    assert status["supervision"]["mode"] == "detached" and "not PID 1" in status["supervision"]["reason"]
    assert "RLIMIT_DATA" in as_user("joan", LAUNCH, "status").stdout
    assert "starting the server" in pathlib.Path("/run/hydra/joan/server.log").read_text()
    # hydra-cgi says which mode is in effect when it reads hydra.toml (its log: FRONT_LOG here).
    sh("curl", "-s", "-o", "/dev/null", "-u", "joan:correct horse", "http://localhost/")
    assert "notebook servers run as detached processes (systemd is not PID 1" in FRONT_LOG.read_text()


def test_supervisor_systemd_without_systemd_is_a_clear_configuration_error_and_starts_nothing(limited, config):
    limited("joan")
    config(**{"limits.supervisor": '"systemd"'})
    provisioned = sh(PREFIX / "addldapuser", "--json", "joan", check=False)
    assert provisioned.returncode == 78 and "systemd is not PID 1" in json.loads(provisioned.stdout)["error"]
    result = as_user("joan", LAUNCH, "start", "--json")
    assert result.returncode == 78, result.stdout
    assert "systemd is not PID 1" in json.loads(result.stdout)["error"]
    assert not pathlib.Path("/run/hydra/joan/jupyter.sock").exists()
    assert sh("pgrep", "-u", "joan", "-f", "jupyter-lab", check=False).stdout == ""


def verify_unit(text, name):
    """systemd-analyze verify --user on a unit file; returns what it complained about."""
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o700)
        unit = pathlib.Path(scratch, name)
        unit.write_text(text)
        runtime = pathlib.Path(scratch, "xdg")
        runtime.mkdir(mode=0o700)
        result = subprocess.run(["systemd-analyze", "verify", "--user", str(unit)], capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime)}, timeout=60)
        return (result.stdout + result.stderr).strip()


def test_unit_built_from_the_config_passes_systemd_analyze_verify(limited):
    limited("joan", "sophie", memory_max='"1536M"', cpu_quota='"150%"', tasks_max="300",
            **{"users.sophie.memory_max": '"3G"'})
    answer = json.loads(as_user("joan", LAUNCH, "unit", "--json").stdout)
    assert answer["name"] == "hydra-jupyter-joan.service"
    text = answer["unit_file"]
    for line in ("MemoryMax=1610612736", "CPUQuota=150%", "TasksMax=300", "OOMPolicy=continue",
                 "StandardOutput=append:/run/hydra/joan/server.log", "WorkingDirectory=/home/joan"):
        assert f"\n{line}\n" in text, line
    assert verify_unit(text, answer["name"]) == ""
    # The check can fail: a value systemd would ignore is reported.
    assert "Invalid memory limit" in verify_unit(text.replace("MemoryMax=1610612736", "MemoryMax=1.5Q"), answer["name"])
    sophie = json.loads(as_user("sophie", LAUNCH, "unit", "--json").stdout)["unit_file"]
    assert "\nMemoryMax=3221225472\n" in sophie and "\nTasksMax=300\n" in sophie
    assert verify_unit(sophie, "hydra-jupyter-sophie.service") == ""


def test_detached_servers_run_under_the_configured_rlimits_with_per_user_overrides(limited):
    limited("joan", "sophie", memory_max='"1G"', tasks_max="200", **{"users.sophie.memory_max": '"2G"'})
    joan, sophie = start("joan"), start("sophie")
    assert process_limits(joan["pid"])["Max data size"] == str(1 << 30)
    assert process_limits(joan["pid"])["Max processes"] == "200"
    assert process_limits(sophie["pid"])["Max data size"] == str(2 << 30)


def test_kernel_allocating_past_the_memory_limit_gets_memory_error_and_the_server_survives(limited):
    limited("joan", memory_max='"1G"')
    report = start("joan")
    assert run_in_kernel("joan", report["token"], "b = bytearray(3 * 1024**3); len(b)") == "ERROR MemoryError"
    again = start("joan")
    assert again["outcome"] == "reused" and again["pid"] == report["pid"]
    assert run_in_kernel("joan", report["token"], "1+1") == "2"


@pytest.fixture()
def own_ipython_config(site):
    """Plants joan's own IPython configuration: a startup file, and a kernel config that replaces
    `exec_lines` and `extensions`, as a person may; removed afterwards."""
    assert sh(PREFIX / "addldapuser", "joan", check=False).returncode in (0, 1)  # her home first
    profile = pathlib.Path("/home/joan/.ipython/profile_default")
    (profile / "startup").mkdir(parents=True, exist_ok=True)
    (profile / "startup/00-own.py").write_text("OWN_STARTUP = 'ran'\n")
    (profile / "ipython_kernel_config.py").write_text(
        "c.InteractiveShellApp.exec_lines = [\"OWN_EXEC = 'ran'\"]\nc.InteractiveShellApp.extensions = []\n")
    sh("chown", "-R", "joan:", "/home/joan/.ipython")
    yield
    sh("rm", "-rf", "/home/joan/.ipython")


def test_memory_error_names_the_limit_and_the_persons_own_ipython_config_still_applies(limited, own_ipython_config):
    limited("joan", memory_max='"1G"', tasks_max="150")
    report = start("joan")
    result, shown = run_in_kernel_showing("joan", report["token"], "b = bytearray(3 * 1024**3)")
    assert result == "ERROR MemoryError", shown
    assert "MemoryError" in shown and "bytearray(3 * 1024**3)" in shown, shown  # the traceback is still there
    assert ("This notebook server may use at most 1024 MiB of memory per process (the site's limit, limits.memory_max). "
            "Free some memory (del large variables) or restart the kernel") in shown, shown
    # hydra's extension is added to the person's configuration, not instead of it.
    assert run_in_kernel("joan", report["token"], "OWN_STARTUP + ' ' + OWN_EXEC") == "'ran ran'"
    # Other errors are shown as before, with nothing added.
    result, shown = run_in_kernel_showing("joan", report["token"], "raise RuntimeError('mine')")
    assert result == "ERROR RuntimeError" and "RuntimeError: mine" in shown and "limits." not in shown, shown
    # What hydra added is in the runtime directory, the person's alone; their home has only what they put there.
    extension = pathlib.Path("/run/hydra/joan/kernel-extension")
    assert extension.stat().st_uid == int(sh("id", "-u", "joan").stdout) and extension.stat().st_mode & 0o777 == 0o700
    profile = pathlib.Path("/home/joan/.ipython/profile_default")
    assert (profile / "startup/00-own.py").read_text() == "OWN_STARTUP = 'ran'\n"
    assert (profile / "ipython_kernel_config.py").read_text().startswith("c.InteractiveShellApp.exec_lines")
    assert not [p for own in (".ipython", ".jupyter") for p in pathlib.Path("/home/joan", own).rglob("*hydra*")]


THREADS_TO_THE_LIMIT = """
import threading
release = threading.Event()
threads = []
try:
    while len(threads) < 2000:
        threads.append(threading.Thread(target=release.wait, args=(60,)))
        threads[-1].start()
finally:
    release.set()
"""


def test_a_thread_refused_at_the_task_limit_names_the_limit(limited):
    limited("joan", tasks_max="150")
    report = start("joan")
    result, shown = run_in_kernel_showing("joan", report["token"], THREADS_TO_THE_LIMIT)
    assert result == "ERROR RuntimeError" and "can't start new thread" in shown, shown
    assert ("Your account may run at most 150 processes and threads at once (the site's limit, limits.tasks_max)") in shown, shown
    assert run_in_kernel("joan", report["token"], "1+1") == "2"


FORK_BOMB = """
import os, time
children, stopped_by = [], None
try:
    while len(children) < 2000:
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        children.append(pid)
except OSError as error:
    stopped_by = type(error).__name__
uid = os.getuid()
tasks = 0
for entry in os.listdir("/proc"):
    try:
        if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
            tasks += len(os.listdir(f"/proc/{entry}/task"))
    except OSError:
        pass
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
f"{len(children)} {tasks} {stopped_by}"
"""


def test_fork_bomb_in_a_kernel_stops_at_the_task_limit_and_the_server_survives(limited):
    limited("joan", tasks_max="150")
    report = start("joan")
    children, tasks, stopped_by = run_in_kernel("joan", report["token"], FORK_BOMB).strip("'").split()
    assert stopped_by == "BlockingIOError", (children, tasks, stopped_by)
    assert 0 < int(children) < 150 and int(tasks) <= 150
    assert run_in_kernel("joan", report["token"], "1+1") == "2"


def test_account_already_at_its_task_limit_gets_a_clear_temporary_failure(limited):
    limited("sophie", tasks_max="1")
    result = as_user("sophie", LAUNCH, "start", "--json")
    assert result.returncode == 75, result.stdout + result.stderr
    assert "limits.tasks_max" in json.loads(result.stdout)["error"]
    assert sh("pgrep", "-u", "sophie", "-f", "jupyter-lab", check=False).stdout == ""


def test_server_outlives_a_full_apache_restart(limited):
    limited("sophie")
    report = start("sophie")
    sh("apache2ctl", "stop")
    try:
        sh("bash", "-c", "for i in $(seq 100); do pgrep -x apache2 >/dev/null || exit 0; sleep 0.1; done; exit 1")
        assert os.path.exists(f"/proc/{report['pid']}"), "the server died with Apache"
    finally:
        sh("apache2ctl", "start")
        wait_for(lambda: sh("curl", "-s", "-o", "/dev/null", "http://localhost/hydra/health", check=False).returncode == 0)
    again = start("sophie")
    assert again["outcome"] == "reused" and again["pid"] == report["pid"]
