"""hydra's systemd mode under a real systemd (PID 1): the checks of the VM tier.

Tests/VM/run runs this inside the VM, as root, after scripts/install-demo (with HYDRA_BIN set):

    systemd_checks.py before-reboot    first visit, the unit and its limits, Apache restarts,
                                       OOM, fork bomb, ipynb-launch status/stop/unit; then it
                                       sets a short idle timeout for the next boot
    systemd_checks.py after-reboot     the site came back by itself, a fresh server, no failed
                                       unit, idle shutdown
    systemd_checks.py package          hydra-gate killed comes back; the site's own https vhost;
                                       an upgrade to HYDRA_UPGRADE_DEB while alice's server runs;
                                       apt remove beside another site; apt purge

Each check prints one line, PASS or FAIL with its name (and why it failed); INFO lines tell
what a person can see. Exit status 1 when a check failed.
"""
import json
import os
import pathlib
import re
import sys
import time
import traceback

os.environ["HYDRA_SANDBOX"] = "1"  # load_support's guard: this VM is a throwaway machine of its own
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Integration"))

from load_support import (JUPYTER_PYTHON, LAUNCH, ErrorLog, api, as_user, assert_in_lab,  # noqa: E402
                          browser_for, server_status, sh, visit, wait_for)

USER = "alice"
UNIT = f"hydra-jupyter-{USER}.service"
CONFIG = pathlib.Path("/etc/hydra/hydra.toml")
PASSWORD = pathlib.Path("/etc/hydra/demo-credentials").read_text().strip()
LIMITS = {"memory_max": '"384M"', "cpu_quota": '"100%"', "tasks_max": "100"}
MEMORY_MAX, CPU_MAX, TASKS_MAX = str(384 << 20), "100000 100000", "100"
# The VM's CPU is emulated: Jupyter Server takes 40-60 s to start there (2 s on this kind of host).
START_TIMEOUT = 240
IDLE_TIMEOUT = 60  # seconds; Jupyter looks once a minute
state = {}  # what a check started for later ones: the browser, the server's and the kernel's PIDs
# Runs code in a kernel over its connection file, as the kernel's owner; prints the reply as JSON.
KERNEL_EXECUTE = r"""
import json, sys
from jupyter_client import BlockingKernelClient
client = BlockingKernelClient()
client.load_connection_file(sys.argv[1])
client.start_channels()
client.wait_for_ready(timeout=120)
output = []
def keep(message):
    content = message["content"]
    output.append(content.get("text") or content.get("evalue") or "")
try:
    reply = client.execute_interactive(sys.argv[2], timeout=float(sys.argv[3]), output_hook=keep)
    print(json.dumps({"status": reply["content"]["status"], "output": "".join(output)}))
except TimeoutError:
    print(json.dumps({"status": "no answer", "output": "".join(output)}))
"""


# --- what systemd says --------------------------------------------------------------------------

def uid():
    return int(sh("id", "-u", USER).stdout)


def user_systemctl(*args):
    """systemctl --user as the person would run it over ssh (their manager's bus)."""
    return as_user(USER, "env", f"XDG_RUNTIME_DIR=/run/user/{uid()}",
                   f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{uid()}/bus", "systemctl", "--user", *args)


def unit_properties(unit=UNIT, *names):
    out = user_systemctl("show", unit, *(f"--property={n}" for n in names)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_active():
    return unit_properties(UNIT, "ActiveState")["ActiveState"] == "active"


def cgroup_file(name):
    group = unit_properties(UNIT, "ControlGroup")["ControlGroup"]
    return pathlib.Path(f"/sys/fs/cgroup{group}/{name}").read_text().strip()


def failed_units():
    system = sh("systemctl", "--failed", "--plain", "--no-legend").stdout.strip()
    user = user_systemctl("--failed", "--plain", "--no-legend").stdout.strip()
    return system, user


def assert_no_failed_units():
    system, user = failed_units()
    assert not system and not user, f"failed units: system: {system!r}; {USER}'s: {user!r}"


# --- the person's server and kernels -------------------------------------------------------------

def status():
    return server_status(USER)


def server_pid():
    return status().get("pid")


def process_with(text):
    """The PID of the one process whose command line contains `text`, or None."""
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                pass
    return None


def alive(pid):
    return pid is not None and pathlib.Path(f"/proc/{pid}").exists()


def start_kernel(browser):
    code, body = api(browser, USER, "POST", "kernels", {"name": "python3"})
    assert code == 201, f"starting a kernel answered {code}: {body[:500]}"
    kernel_id = json.loads(body)["id"]
    wait_for(lambda: process_with(f"kernel-{kernel_id}.json"), timeout=120, interval=0.5)
    return kernel_id, process_with(f"kernel-{kernel_id}.json")


def execute(kernel_id, code, timeout=120):
    """Runs `code` in the kernel as its owner; returns {"status", "output"}."""
    connection = f"/run/hydra/{USER}/jupyter/kernel-{kernel_id}.json"
    result = as_user(USER, JUPYTER_PYTHON, "-c", KERNEL_EXECUTE, connection, code, str(timeout), timeout=timeout + 180)
    assert result.returncode == 0, f"running code in the kernel failed: {result.stderr[-1500:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def visit_lab():
    """The browser's visit, which must end in the lab; if not, the logs tell why. The emulated
    CPU starts Jupyter in 40-60 s, more when the host is busy: a start longer than the front's
    75 s wait gets the page that reloads itself, which the visit follows."""
    errors = ErrorLog()
    result = visit(state["browser"])
    if not result.in_lab(USER) and result.steps and "Choose" in result.steps[-1].title:
        # No server of hers runs (a reboot, an idle shutdown): her last choice is preselected.
        choose(state["browser"])
        result = visit(state["browser"])
    if not result.in_lab(USER):
        front = sh("journalctl", "-u", "hydra-cgi", "--no-pager", "-o", "cat", "-n", "30", check=False).stdout
        info(f"the visit ended in {result.status} after {result.seconds:.0f} s; Apache's error logs:\n{errors.text()[-3000:]}\n"
             f"the front's (journalctl -u hydra-cgi):\n{front}")
    assert_in_lab(result, USER)
    return result


def choose(browser, profile=None):
    """Posts the profile page's form, as the person would: `profile`, or the one preselected."""
    code, _, page = browser.request("GET", "/hydra/profile")
    assert code == 200 and 'name="profile"' in page, f"/hydra/profile answered {code}: {page[:500]}"
    if profile is None:
        profile = re.search(r'name="profile" value="([^"]+)" checked', page).group(1)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    code, _, page = browser.request("POST", "/hydra/profile", form={"profile": profile, "_xsrf": token})
    assert code == 200, f"choosing {profile} answered {code}: {page[:500]}"


def slice_file(name, user=USER):
    """A cgroup file of the person's user-UID.slice: the ceiling on all they run."""
    user_id = int(sh("id", "-u", user).stdout)
    return pathlib.Path(f"/sys/fs/cgroup/user.slice/user-{user_id}.slice/{name}").read_text().strip()


def assert_kernel_computes(when):
    reply = execute(state["kernel"], "print(1 + 1)")
    assert reply == {"status": "ok", "output": "2\n"}, f"{when}, the kernel answered {reply}"


def set_config(table, key, value, after=None):
    """KEY = VALUE (TOML) in [TABLE] of hydra.toml, replacing the key if it is there; the table
    is added at the end if it is missing. after: the first [TABLE] after this line (a profile's
    `name = "..."`). The front reads the file again at its next request, with no reload."""
    lines = CONFIG.read_text().splitlines()
    header = f"[{table}]"
    first = lines.index(after) if after else 0
    if header not in lines[first:]:
        lines += ["", header]
    start = lines.index(header, first) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    lines = [line for i, line in enumerate(lines) if not (start <= i < end and re.match(rf"{key}\s*=", line))]
    lines.insert(start, f"{key} = {value}")
    CONFIG.write_text("\n".join(lines) + "\n")


# --- the checks ---------------------------------------------------------------------------------

def info(text):
    for line in text.strip().splitlines():
        print(f"INFO   {line}", flush=True)


def check_systemd_is_pid1():
    comm = pathlib.Path("/proc/1/comm").read_text().strip()
    controllers = pathlib.Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    assert comm == "systemd", f"PID 1 is {comm}"
    assert {"memory", "pids", "cpu"} <= set(controllers), f"cgroup v2 controllers: {controllers}"
    return f"cgroup v2 with {' '.join(controllers)}"


def check_first_visit():
    state["browser"] = browser_for(USER, PASSWORD)
    code, _, page = state["browser"].request("GET", "/")
    offered = re.findall(r'name="profile" value="([^"]+)"', page)
    assert code == 200 and offered == ["course", "research"], f"her first page ({code}) offers {offered}: {page[:500]}"
    choose(state["browser"], "course")
    result = visit_lab()
    state["server"] = server_pid()
    return f"{result.seconds:.1f} s to the lab; server pid {state['server']}"


def check_server_is_the_user_unit():
    linger = sh("loginctl", "show-user", USER, "--property=Linger", "--value").stdout.strip()
    assert linger == "yes", f"lingering of {USER}: {linger!r}"
    props = unit_properties(UNIT, "ActiveState", "MainPID", "ControlGroup")
    assert props["ActiveState"] == "active", props
    assert int(props["MainPID"]) == state["server"], f"ipynb-launch status says pid {state['server']}, systemd {props}"
    expected = f"/user.slice/user-{uid()}.slice/user@{uid()}.service/"
    assert props["ControlGroup"].startswith(expected), f"the unit's cgroup {props['ControlGroup']} is not under {expected}"
    return f"{UNIT} active, MainPID {props['MainPID']}, {props['ControlGroup']}"


def check_limits_in_cgroup_files():
    found = {name: cgroup_file(name) for name in ("memory.max", "pids.max", "cpu.max")}
    assert found == {"memory.max": MEMORY_MAX, "pids.max": TASKS_MAX, "cpu.max": CPU_MAX}, found
    return " ".join(f"{k}={v}" for k, v in found.items())


def check_printed_unit_is_the_running_unit():
    """systemd itself parses what `ipynb-launch unit` prints; every setting equals the running unit's."""
    printed = as_user(USER, LAUNCH, "unit").stdout
    assert "[Service]" in printed, printed
    folder = pathlib.Path(f"/run/user/{uid()}/systemd/user")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "hydra-printed-unit.service"
    copy.write_text(printed)
    try:
        user_systemctl("daemon-reload")
        names = ["Type", "WorkingDirectory", "UMask", "StandardOutput", "StandardError", "OOMPolicy", "TimeoutStopUSec",
                 "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "Environment", "Description", "ExecStart"]
        printed_props = unit_properties(copy.name, *names)
        running_props = unit_properties(UNIT, *names)
    finally:
        copy.unlink()
        user_systemctl("daemon-reload")
    for props in (printed_props, running_props):  # the command, without the run's pid and times
        props["ExecStart"] = re.search(r"argv\[\]=([^;]*);", props["ExecStart"]).group(1).strip()
    differ = {n: (printed_props.get(n), running_props.get(n)) for n in names if printed_props.get(n) != running_props.get(n)}
    assert not differ, f"printed unit vs running unit: {differ}"
    return f"{len(names)} settings equal"


def check_kernel_in_the_unit():
    state["kernel"], state["kernel_pid"] = start_kernel(state["browser"])
    group = unit_properties(UNIT, "ControlGroup")["ControlGroup"]
    kernel_group = pathlib.Path(f"/proc/{state['kernel_pid']}/cgroup").read_text().strip()
    assert kernel_group.endswith(group), f"kernel's cgroup {kernel_group}, unit's {group}"
    return f"kernel pid {state['kernel_pid']} in {group}"


def apache_keeps_server_and_kernel(action):
    before = (state["server"], state["kernel_pid"])
    sh("systemctl", action, "apache2", timeout=180)
    sh("systemctl", "is-active", "apache2")
    assert alive(state["server"]) and alive(state["kernel_pid"]), f"after {action}: server or kernel gone {before}"
    assert unit_active() and server_pid() == state["server"], f"after {action}: status pid {server_pid()}, was {state['server']}"
    visit_lab()
    code, body = api(state["browser"], USER, "GET", "kernels")
    assert code == 200 and state["kernel"] in body, f"the kernel is not listed after {action}: {code} {body[:300]}"
    assert server_pid() == state["server"] and process_with(f"kernel-{state['kernel']}.json") == state["kernel_pid"]
    return f"server pid {state['server']} and kernel pid {state['kernel_pid']} before and after; next visit reused them"


def check_apache_restart():
    return apache_keeps_server_and_kernel("restart")


def check_apache_reload():
    return apache_keeps_server_and_kernel("reload")


def check_oom_kills_the_kernel_not_the_server():
    kills_before = int(re.search(r"oom_kill (\d+)", cgroup_file("memory.events")).group(1))
    # 1 GiB in 64 MiB pieces, every byte written: the pieces pass the kernel's overcommit check
    # (one 1 GiB allocation would fail with a MemoryError), their sum passes memory_max.
    reply = execute(state["kernel"], "hog = [b'x' * (64 << 20) for _ in range(16)]\nprint('allocated')", timeout=60)
    assert "allocated" not in reply["output"], f"1 GiB was allocated past memory_max: {reply}"
    wait_for(lambda: not alive(state["kernel_pid"]), timeout=60, interval=0.5)
    kills = int(re.search(r"oom_kill (\d+)", cgroup_file("memory.events")).group(1))
    assert kills > kills_before, f"memory.events oom_kill {kills_before} -> {kills}"
    assert alive(state["server"]) and unit_active() and status().get("running"), "the server did not survive the OOM kill"
    # What the person can learn: the unit's journal (theirs), their server's log, the lab.
    journal = as_user(USER, "journalctl", "--user", "-u", UNIT, "--no-pager", "-o", "cat", "-n", "20").stdout
    log = pathlib.Path(f"/run/hydra/{USER}/server.log").read_text(errors="replace")
    info("the person's journal (journalctl --user -u %s):\n%s" % (UNIT, "\n".join(
        line for line in journal.splitlines() if re.search(r"oom|memory|kill", line, re.I)) or "(nothing about it)"))
    info("their server log (/run/hydra/%s/server.log):\n%s" % (USER, "\n".join(
        line for line in log.splitlines() if re.search(r"restart|died|dead", line, re.I))[-600:] or "(nothing about it)"))
    info("the kernel's log (dmesg): " + ([line for line in sh("dmesg").stdout.splitlines()
                                          if "Memory cgroup out of memory" in line] or ["(nothing about it)"])[-1])
    wait_for(lambda: process_with(f"kernel-{state['kernel']}.json"), timeout=120, interval=0.5)
    state["kernel_pid"] = process_with(f"kernel-{state['kernel']}.json")
    assert_kernel_computes("after the OOM kill")
    return (f"oom_kill {kills_before} -> {kills}; server pid {state['server']} lives; "
            f"Jupyter restarted the kernel (pid {state['kernel_pid']}), which computes again")


def check_fork_bomb_stops_at_tasks_max():
    code = r"""
import os, time, json
cgroup = "/sys/fs/cgroup" + open("/proc/self/cgroup").read().strip().split("::")[1]
children, error = [], None
while len(children) < 5000:
    try:
        pid = os.fork()
    except OSError as e:
        error = f"{type(e).__name__}: {e}"
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)
current = open(cgroup + "/pids.current").read().strip()
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
print(json.dumps({"forked": len(children), "error": error, "pids_current": current}))
"""
    events_before = int(re.search(r"max (\d+)", cgroup_file("pids.events")).group(1))
    reply = execute(state["kernel"], code, timeout=300)
    assert reply["status"] == "ok", reply
    result = json.loads(reply["output"].strip().splitlines()[-1])
    events = int(re.search(r"max (\d+)", cgroup_file("pids.events")).group(1))
    assert result["error"] and "Resource temporarily unavailable" in result["error"], result
    assert int(TASKS_MAX) - 5 <= int(result["pids_current"]) <= int(TASKS_MAX), \
        f"at the failed fork pids.current was {result['pids_current']}, tasks_max {TASKS_MAX}"
    assert events > events_before, f"pids.events max {events_before} -> {events}"
    assert alive(state["server"]) and unit_active(), "the server did not survive the fork bomb"
    assert_kernel_computes("after the fork bomb")
    return f"{result['forked']} forks, then {result['error']}; pids.current {result['pids_current']} = tasks_max"


def check_status_tells_why_in_words():
    """After the OOM kill and the fork bomb above, `ipynb-launch status` (as the person) reports
    what the unit's control group recorded, and says it in words."""
    shown = status()
    events, words = shown.get("limit_events") or {}, shown.get("limit_explanation") or ""
    assert events.get("oom_kills", 0) > 0 and events.get("task_limit_hits", 0) > 0, shown
    assert events.get("memory_max_bytes") == int(MEMORY_MAX) and events.get("tasks_max") == int(TASKS_MAX), events
    assert "of yours" in words and "more than 384 MiB of memory, this site's limit per person" in words, words
    assert "could not start more than 100 processes and threads" in words, words
    printed = as_user(USER, LAUNCH, "status").stdout
    assert "ended by the OOM killer" in printed and "384 MiB" in printed, printed
    info(f"what `ipynb-launch status` tells {USER}:\n{printed}")
    return f"oom_kills {events['oom_kills']}, task_limit_hits {events['task_limit_hits']}"


def check_next_page_and_admin_page_tell_why():
    """The person's next visit through the front (a browser without the shortcut cookie) gets a
    page that says why, in words, once; the admin page shows the counts beside the server."""
    told = visit(browser_for(USER, PASSWORD))
    assert told.status == 200 and "Your notebook server hit a limit" in told.page, told.trail()
    assert "of yours" in told.page and "your notebook server used more than 384 MiB of memory" in told.page, told.page[:1500]
    again = visit(browser_for(USER, PASSWORD))
    assert_in_lab(again, USER)  # told once: the visit after goes on into the lab
    status, _, page = browser_for("carol", PASSWORD).get("/hydra/admin")
    assert status == 200, f"carol's admin page: {status} {page[:500]}"
    row = re.search(rf'<tr data-user="{USER}">(.*?)</tr>', page, re.S)
    assert row and "ended by the OOM killer" in row.group(1) and "systemd unit" in row.group(1), page[:3000]
    info("what the front told %s: %s" % (USER, re.sub(r"<[^>]+>", " ", told.page.split("<h1>", 1)[-1])[:400]))
    return re.sub(r"<[^>]+>|\s+", " ", row.group(1)).strip()


def check_status_agrees_with_systemd():
    shown = status()
    props = unit_properties(UNIT, "ActiveState", "MainPID")
    assert shown.get("running") and props["ActiveState"] == "active" and shown.get("pid") == int(props["MainPID"]), (shown, props)
    assert shown["supervision"]["mode"] == "systemd", shown["supervision"]
    return f"running, pid {shown['pid']} = MainPID; {shown['supervision']['reason']}"


def check_stop_agrees_with_systemd():
    result = as_user(USER, LAUNCH, "stop")
    assert result.returncode == 0, result.stderr
    props = unit_properties(UNIT, "ActiveState", "LoadState")
    assert props["ActiveState"] == "inactive", f"after ipynb-launch stop: {props}"
    assert not status().get("running"), status()
    assert not alive(state["server"]) and not alive(state["kernel_pid"]), "server or kernel processes left"
    assert_no_failed_units()
    return f"unit {props['ActiveState']} ({props['LoadState']}); status: not running"


def check_visit_after_stop_starts_a_fresh_unit():
    visit_lab()
    fresh = server_pid()
    assert fresh and fresh != state["server"] and unit_active(), (fresh, state["server"])
    assert int(unit_properties(UNIT, "MainPID")["MainPID"]) == fresh
    state["server"] = fresh
    return f"server pid {fresh} in {UNIT}"


def check_no_failed_units():
    assert_no_failed_units()
    return "systemctl --failed and systemctl --user --failed list nothing"


def check_switch_to_research():
    before = state["server"]
    choose(state["browser"], "research")
    visit_lab()
    state["server"] = server_pid()
    assert state["server"] != before and unit_active() and status().get("profile") == "research", status()
    memory = cgroup_file("memory.max")
    assert memory == str(4 << 30), f"the unit's memory.max is {memory}, research's is {4 << 30}"
    return f"server pid {state['server']}, memory.max {memory}"


def check_slice_ceilings():
    bob = browser_for("bob", PASSWORD)
    result = visit(bob)
    assert_in_lab(result, "bob")
    assert "Choose" not in " ".join(step.title for step in result.steps), result.trail()
    found = {"alice": slice_file("memory.max"), "bob": slice_file("memory.max", "bob")}
    assert found == {"alice": str(4 << 30), "bob": MEMORY_MAX}, found
    assert (slice_file("pids.max", "bob"), slice_file("cpu.max", "bob")) == (TASKS_MAX, CPU_MAX)
    return f"memory.max of the slices: {found}; bob's pids.max {TASKS_MAX}, cpu.max {CPU_MAX}"


def check_own_unit_held_by_the_slice():
    """Threat: bob, over ssh, starts a unit of his own asking his manager for 8 GiB."""
    bob_id = int(sh("id", "-u", "bob").stdout)
    allocate = "data = b'x' * (600 << 20); print('allocated', len(data))"
    result = as_user("bob", "env", f"XDG_RUNTIME_DIR=/run/user/{bob_id}", f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{bob_id}/bus",
                     "systemd-run", "--user", "--wait", "--pipe", "--collect", "--unit=bob-own-big", "--property=MemoryMax=8G",
                     "--property=MemorySwapMax=0", "/usr/bin/python3", "-c", allocate, timeout=300)
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "allocated" not in said and ("oom-kill" in said or "status=KILL" in said), \
        f"exit {result.returncode}: {said[-1500:]}"
    assert server_status("bob").get("running"), "bob's own unit's OOM took his server with it"
    return f"systemd-run --user -p MemoryMax=8G: {said.strip().splitlines()[-1] if said.strip() else result.returncode}"


def check_site_back_after_reboot():
    running = sh("systemctl", "is-system-running", "--wait", check=False, timeout=300).stdout.strip()
    for unit in ("apache2", "hydra-gate", "hydra-cgi", "hydra-demo-slapd"):
        assert sh("systemctl", "is-enabled", unit, check=False).stdout.strip() == "enabled", f"{unit} is not enabled"
        assert sh("systemctl", "is-active", unit, check=False).stdout.strip() == "active", f"{unit} is not active"
    code = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost/hydra/health").stdout
    assert code == "200", f"/hydra/health answered {code}"
    assert running == "running", f"systemctl is-system-running: {running}; failed: {failed_units()}"
    assert not status().get("running"), "a server is running before anybody visited"
    return "apache2, hydra-gate, hydra-cgi and hydra-demo-slapd enabled and active, /hydra/health 200, system running"


def uptime():
    return float(pathlib.Path("/proc/uptime").read_text().split()[0])


def started_since_boot(pid):
    """When the process started, in seconds since the boot (/proc/PID/stat, field 22)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def check_first_visit_after_reboot():
    before = uptime()
    state["browser"] = browser_for(USER, PASSWORD)
    result = visit_lab()
    state["server"] = server_pid()
    assert unit_active() and started_since_boot(state["server"]) >= before - 1, "no fresh server in the unit"
    return f"{result.seconds:.1f} s to the lab; fresh server pid {state['server']}, started by this visit"


def check_no_failed_units_after_reboot():
    assert_no_failed_units()
    return "systemctl --failed and systemctl --user --failed list nothing"


def check_idle_shutdown_leaves_no_failed_unit():
    started = time.monotonic()
    wait_for(lambda: not unit_active(), timeout=IDLE_TIMEOUT + 240, interval=2)
    props = unit_properties(UNIT, "ActiveState", "LoadState", "Result")
    assert not status().get("running") and not alive(state["server"]), "the server is still there"
    assert_no_failed_units()
    return f"the server ended {time.monotonic() - started:.0f} s after the check began; unit {props}"


def check_visit_after_idle_shutdown():
    result = visit_lab()
    assert unit_active() and server_pid() != state["server"]
    return f"{result.seconds:.1f} s to the lab; server pid {server_pid()}"


# --- the package's life under systemd (issue 23) ------------------------------------------------

REPO = pathlib.Path(__file__).resolve().parents[2]
SITE_FILES = ["/etc/hydra", "/etc/apache2/sites-available", "/etc/apache2/sites-enabled", "/etc/sudoers.d"]


def https_visit():
    """demo_visit.sh over https: the sign-in, the auto-login and the lab, as a browser does."""
    result = sh(REPO / "Tests/Integration/demo_visit.sh", "https://localhost", check=False, timeout=600)
    assert result.returncode == 0, f"alice's visit over https: {result.stdout}{result.stderr}"


def site_files():
    """Every file under the site's folders, with its bytes' hash (links: their target)."""
    found = {}
    for top in SITE_FILES:
        for path in sorted(pathlib.Path(top).rglob("*")):
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = sh("sha256sum", path).stdout.split()[0]
    return found


def system_unit(name, unit="hydra-gate.service"):
    return sh("systemctl", "show", unit, f"--property={name}", "--value").stdout.strip()


def main_pid(unit):
    return int(system_unit("MainPID", unit=unit))


def status_of(url):
    return sh("curl", "-ks", "-o", "/dev/null", "-w", "%{http_code}", url, check=False).stdout


def keep_servers_running():
    """No idle shutdown while the package phase runs (after-reboot set 60 s): her server must
    still be the same one across the upgrade. Servers started from now on read it."""
    set_config("server", "idle_timeout_seconds", "0")


def check_killed_gate_comes_back():
    before = main_pid("hydra-gate.service")
    state["browser"] = browser_for(USER, PASSWORD)
    visit_lab()
    sh("systemctl", "kill", "--signal=KILL", "hydra-gate")
    killed = time.monotonic()
    wait_for(lambda: api(state["browser"], USER, "GET", "status")[0] == 200, timeout=10, interval=0.2)
    assert main_pid("hydra-gate.service") not in (0, before)
    return f"alice's API answered again {time.monotonic() - killed:.1f} s after the kill"


def check_killed_front_comes_back():
    before = main_pid("hydra-cgi.service")
    journal = sh("journalctl", "-u", "hydra-cgi", "--no-pager", "-o", "cat").stdout
    assert "notebook servers run as systemd user units" in journal, f"the front's log is not its journal: {journal[-1500:]}"
    sh("systemctl", "kill", "--signal=KILL", "hydra-cgi")
    killed = time.monotonic()
    wait_for(lambda: status_of("http://localhost/hydra/health") == "200", timeout=10, interval=0.2)
    back = time.monotonic() - killed
    assert main_pid("hydra-cgi.service") not in (0, before)
    state["browser"] = browser_for(USER, PASSWORD)
    visit_lab()
    return f"/hydra/health answered again {back:.1f} s after the kill; alice's next visit reached her lab"


def check_site_vhost_over_https():
    example = pathlib.Path("/usr/share/doc/hydra-notebooks/examples/hydra-ssl.conf").read_text()
    pathlib.Path("/etc/apache2/sites-available/hydra.conf").write_text(example.replace("notebooks.example.org", "localhost"))
    sh("a2enmod", "-q", "ssl")
    set_config("site", "public_url", '"https://localhost"')
    sh("systemctl", "restart", "apache2")
    as_user(USER, LAUNCH, "stop")   # her next server learns the new public_url
    https_visit()
    assert status_of("http://localhost/") == "301", "port 80 does not send browsers to https"
    state["server"] = server_pid()
    return f"server pid {state['server']}"


def check_upgrade_keeps_server_and_site_files():
    upgrade = os.environ["HYDRA_UPGRADE_DEB"]
    version = sh("dpkg-deb", "-f", upgrade, "Version").stdout.strip()
    with CONFIG.open("a") as config:
        config.write("# added by the admin: kept across upgrades\n")
    files = site_files()
    gate_before, front_before = main_pid("hydra-gate.service"), main_pid("hydra-cgi.service")
    result = sh("apt-get", "install", "-y", "-q", "--no-install-recommends", upgrade, check=False, timeout=600,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for program in ("hydra-cgi", "hydra-gate", "addldapuser", "ipynb-launch"):
        said = sh(f"/usr/lib/hydra/{program}", "--version").stdout.strip()
        assert said == version, f"{program} says {said}, the package is {version}"
    assert server_pid() == state["server"] and alive(state["server"]), "her server did not keep its PID"
    changed = {path for path in files.keys() | site_files().keys() if files.get(path) != site_files().get(path)}
    assert not changed, f"changed by the upgrade: {sorted(changed)}"
    assert main_pid("hydra-gate.service") != gate_before, "hydra-gate was not restarted"
    assert main_pid("hydra-cgi.service") not in (0, front_before), "the front (hydra-cgi.service) was not restarted"
    https_visit()
    metrics = sh("curl", "-ks", "https://localhost/hydra/metrics").stdout
    assert re.search(rf'^hydra_build_info{{version="{re.escape(version)}"}} 1(\.0)?$', metrics, re.M), metrics[:500]
    return f"{version}; server pid {state['server']} kept; {len(files)} site files byte-identical"


def check_remove_leaves_other_sites_and_accounts():
    pathlib.Path("/var/www/other").mkdir(parents=True, exist_ok=True)
    pathlib.Path("/var/www/other/index.html").write_text("the other site\n")
    pathlib.Path("/etc/apache2/sites-available/other.conf").write_text(
        "Listen 8081\n<VirtualHost *:8081>\n    DocumentRoot /var/www/other\n</VirtualHost>\n")
    sh("a2ensite", "-q", "other")
    sh("systemctl", "reload", "apache2")
    result = sh("apt-get", "remove", "-y", "-q", "hydra-notebooks", check=False, timeout=600,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sh("systemctl", "reload", "apache2")
    assert sh("curl", "-s", "http://localhost:8081/").stdout == "the other site\n"
    assert status_of("http://localhost/user/alice/lab") == "404", status_of("http://localhost/user/alice/lab")
    for unit in ("hydra-gate.service", "hydra-cgi.service"):
        assert system_unit("ActiveState", unit=unit) != "active", f"{unit}: {system_unit('ActiveState', unit=unit)}"
    assert alive(state["server"]), "removing hydra ended her server (it is hers to keep)"
    assert sh("getent", "passwd", USER).returncode == 0 and pathlib.Path(f"/home/{USER}/tutorials").is_dir()
    return "the other site answers; /user/alice/ 404; alice's server, account and home are there"


def check_purge_deletes_hydras_state_only():
    result = sh("apt-get", "purge", "-y", "-q", "hydra-notebooks", check=False, timeout=600,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    left = [path for path in ("/etc/hydra", "/var/lib/hydra", "/etc/sudoers.d/hydra", "/usr/lib/hydra",
                              "/lib/systemd/system/hydra-gate.service", "/etc/apache2/sites-available/hydra.conf")
            if pathlib.Path(path).exists()]
    assert not left, f"left after purge: {left}"
    assert sh("getent", "passwd", USER).returncode == 0 and pathlib.Path(f"/home/{USER}/tutorials").is_dir()
    assert sh("getent", "group", "hydra").returncode == 0
    assert "hydra-notebooks:" in result.stdout + result.stderr, "purge did not say what it deleted"
    dropins = list(pathlib.Path("/etc/systemd/system.control").glob("user-*.slice.d/50-*.conf"))
    assert not dropins and slice_file("memory.max") == "max", f"ceilings left: {dropins}, memory.max {slice_file('memory.max')}"
    return "hydra's files and the slices' ceilings gone; alice's account, home and group hydra kept"


def use_test_limits():
    # The demo's profile course is everyone's: its limits are the ones these checks push against.
    for key, value in LIMITS.items():
        set_config("profiles.limits", key, value, after='name = "course"')
    set_config("server", "start_timeout_seconds", str(START_TIMEOUT))


def shorten_idle_timeout():
    set_config("server", "idle_timeout_seconds", str(IDLE_TIMEOUT))


# Each phase: what it sets up first (in hydra.toml), then its checks in order (later checks use
# what earlier ones started). The idle timeout is set last, for the server after the reboot.
PHASES = {
    "before-reboot": [
        ("the test's limits and start timeout in hydra.toml", use_test_limits),
        ("systemd is PID 1, with cgroup v2 memory, pids and cpu", check_systemd_is_pid1),
        ("alice's first visit reaches her JupyterLab", check_first_visit),
        ("her server is hydra-jupyter-alice.service of her systemd --user manager, under lingering", check_server_is_the_user_unit),
        ("MemoryMax, TasksMax and CPUQuota are in the unit's cgroup files", check_limits_in_cgroup_files),
        ("`ipynb-launch unit` prints the unit that actually runs", check_printed_unit_is_the_running_unit),
        ("a kernel started from the lab runs in the server's unit", check_kernel_in_the_unit),
        ("systemctl restart apache2 keeps the server and kernel PIDs; the next visit reuses them", check_apache_restart),
        ("systemctl reload apache2 keeps the server and kernel PIDs; the next visit reuses them", check_apache_reload),
        ("a kernel allocating past memory_max is OOM-killed, the server lives", check_oom_kills_the_kernel_not_the_server),
        ("a fork bomb stops at tasks_max, the server lives", check_fork_bomb_stops_at_tasks_max),
        ("`ipynb-launch status` tells why, in words: the OOM kill and the refused forks", check_status_tells_why_in_words),
        ("the next page tells the person why, once; the admin page shows it", check_next_page_and_admin_page_tell_why),
        ("`ipynb-launch status` agrees with systemd", check_status_agrees_with_systemd),
        ("`ipynb-launch stop` stops the unit; status and systemd agree", check_stop_agrees_with_systemd),
        ("after a stop, the next visit starts a fresh server unit", check_visit_after_stop_starts_a_fresh_unit),
        ("no failed unit, system or alice's", check_no_failed_units),
        ("alice switches to research at /hydra/profile: a new unit whose memory.max is research's 4 GiB", check_switch_to_research),
        ("the ceiling on each person's user-UID.slice is the most their profiles allow: alice research's, bob course's",
         check_slice_ceilings),
        ("bob's own unit with MemoryMax=8G is held by his slice: 600 MiB is OOM-killed, his server lives",
         check_own_unit_held_by_the_slice),
        (f"server.idle_timeout_seconds = {IDLE_TIMEOUT} for the next boot", shorten_idle_timeout),
    ],
    "after-reboot": [
        ("after a reboot the site is back by itself (Apache, the demo's slapd)", check_site_back_after_reboot),
        ("the first visit after the reboot starts a fresh server", check_first_visit_after_reboot),
        ("no failed unit after the reboot, system or alice's", check_no_failed_units_after_reboot),
        ("idle shutdown ends the server and leaves no failed unit", check_idle_shutdown_leaves_no_failed_unit),
        ("after the idle shutdown, the next visit starts a fresh server", check_visit_after_idle_shutdown),
    ],
    "package": [
        ("server.idle_timeout_seconds = 0 for the servers of this phase", keep_servers_running),
        ("hydra-gate killed (systemctl kill) answers again within 10 s", check_killed_gate_comes_back),
        ("the front killed (systemctl kill hydra-cgi) answers again within 10 s; its log is the unit's journal",
         check_killed_front_comes_back),
        ("the site's own :443 vhost (examples/hydra-ssl.conf, snakeoil): alice's visit over https reaches her lab",
         check_site_vhost_over_https),
        ("an upgrade to a higher version: her server keeps its PID, the site's files are byte-identical, the lab answers",
         check_upgrade_keeps_server_and_site_files),
        ("apt remove: another site answers, /user/alice/ no longer routes, her server, account and home stay",
         check_remove_leaves_other_sites_and_accounts),
        ("apt purge: hydra's files and state are gone, the account, home and group stay", check_purge_deletes_hydras_state_only),
    ],
}


def main(phase):
    failed = 0
    for name, check in PHASES[phase]:
        started = time.monotonic()
        try:
            note = check()
            print(f"PASS {name} ({f'{note}; ' if note else ''}{time.monotonic() - started:.1f} s)", flush=True)
        except Exception as error:  # a check's failure, whatever raised it
            failed += 1
            print(f"FAIL {name}: {error}", flush=True)
            info(traceback.format_exc(limit=3))
    print(f"END {phase}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
