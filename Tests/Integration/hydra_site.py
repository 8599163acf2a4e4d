"""The sandbox site shared by the integration tests and the benchmarks: real slapd, real
Apache, real sudo, real useradd. Only ever used inside scripts/sandbox (a throwaway copy of
the machine in its own namespaces), because it creates users and edits sudoers.
"""
import base64
import collections.abc
import email.utils
import http.client
import json
import os
import pathlib
import re
import subprocess
import time
import urllib.parse
from datetime import datetime, timezone
from html.parser import HTMLParser

if os.environ.get("HYDRA_SANDBOX") != "1":
    raise SystemExit("this changes accounts and sudoers: run it through scripts/test, scripts/bench "
                     "or scripts/sandbox, never directly")

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ["HYDRA_BIN"])
PREFIX = pathlib.Path("/usr/lib/hydra")
# Screenshots and figures go here; scripts/test exports it from the sandbox and prints figures/*.txt.
ARTIFACTS = pathlib.Path(os.environ.get("HYDRA_ARTIFACTS", REPO / "artifacts"))
LDAP_DIR = pathlib.Path("/var/lib/hydra-test/ldap")
LDAP_URL = "ldap://127.0.0.1:389/"
SITE_URL = "http://localhost"
# The front's log where systemd is not PID 1 (scripts/lib/hydra-detached; under systemd: the journal).
FRONT_LOG = pathlib.Path("/var/log/hydra/front.log")
PASSWORD = "correct horse"  # every test directory user's password
ACCOUNT_FILES = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]

# The test directory: name -> (uidNumber, display name). Local accounts the tests rely on are
# made by the `site` fixture below.
PEOPLE = {
    "ada": (20001, "Ada Lovelace"),
    "grace": (20002, "Grace Hopper"),
    "linus": (20003, "Linus Example"),
    "barbara": (20004, "Barbara Liskov"),
    "ken": (20005, "Ken Thompson"),
    "clash": (20900, "Clashing UID"),       # 20900 belongs to the local account "localclash"
    "rootish": (0, "Claims UID Zero"),      # the directory must not be able to make root
    "sysish": (100, "Claims a System UID"),
    "weird": (20010, "Weird: Name, =With\\Separators"),
    "localfirst": (20050, "Local Before LDAP"),    # a local account with the directory's UID
    "mismatch": (20051, "Mismatched UID"),          # a local account with another UID
}
PEOPLE.update({f"herd{i:02d}": (21000 + i, f"Herd Member {i}") for i in range(30)})
PEOPLE.update({f"crowd{i:02d}": (22000 + i, f"Crowd Member {i}") for i in range(40)})  # first visits at once
# The end-to-end tests each have their own people, so test files never share an account.
PEOPLE.update({
    "hedy": (20101, "Hedy Lamarr"), "edsger": (20102, "Edsger Dijkstra"),              # test_browser
    "radia": (20111, "Radia Perlman"), "donald": (20112, "Donald Knuth"),              # test_kerberos
    "fran": (20121, "Frances Allen"), "tim": (20122, "Tim Berners-Lee"),               # test_faults
    "margaret": (20123, "Margaret Hamilton"), "john": (20124, "John Backus"),
    "niklaus": (20125, "Niklaus Wirth"), "leslie": (20126, "Leslie Lamport"),
    "konrad": (20127, "Konrad Zuse"), "annie": (20128, "Annie Easley"),
    "alan": (20131, "Alan Kay"),                                                        # test_front (warm visits)
    "joan": (20141, "Joan Clarke"), "sophie": (20142, "Sophie Wilson"),                # test_limits
})
PEOPLE.update({"carol": (24200, "Carol Admin"), "alice": (24201, "Alice Student"), "bob": (24202, "Bob Student")})  # test_admin
PEOPLE.update({f"meter{i:02d}": (24300 + i, f"Metered Member {i}") for i in range(10)})  # test_admin (metrics)
PEOPLE.update({f"swarm{i:02d}": (23000 + i, f"Swarm Member {i}") for i in range(30)})  # test_load
PEOPLE.update({f"class{i:02d}": (24000 + i, f"Class Member {i}") for i in range(100)})  # test_capacity (50), the bench (100)
PEOPLE.update({"kathleen": (24400, "Kathleen Booth"), "ida": (24401, "Ida Rhodes"),   # test_slurm_backend
               "mary": (24402, "Mary Keller")})
PEOPLE.update({f"flock{i:02d}": (24500 + i, f"Flock Member {i}") for i in range(30)})    # test_slurm_backend (herd, Slurm)
PEOPLE.update({f"drove{i:02d}": (24600 + i, f"Drove Member {i}") for i in range(30)})    # test_slurm_backend (herd, local)
PEOPLE.update({"trent": (24700, "Trent Admin"), "eve": (24701, "Eve Hostile"), "victor": (24702, "Victor Running"),  # test_hostile
               "stuck": (24703, "Holds Her Own Lock")})
PEOPLE.update({f"arrival{i:02d}": (24710 + i, f"Arrival {i}") for i in range(20)})       # test_hostile (start slots)
PEOPLE.update({"rosalind": (24800, "Rosalind Franklin"), "lise": (24801, "Lise Meitner")})  # test_profiles
PEOPLE.update({
    "watcher": (24100, "Watches The Site"), "mallory": (24101, "Stalls Her Server"),       # test_capacity
    "trudy": (24102, "Plants Sockets"), "filler": (24103, "Fills What She Can"),
    "newcomer": (24104, "Comes After"), "sleeper": (24105, "Server Stopped"),
    "rebooted": (24106, "After A Reboot"), "crowded": (24107, "Arrives When Full"),
})


def sh(*argv, check=True, input=None, env=None, timeout=120):
    """Runs argv (never a shell) and returns the CompletedProcess with text output."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input,
                            env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def bash_lib(script):
    """Runs a snippet with scripts/lib/*.sh sourced."""
    return sh("bash", "-c", f"set -euo pipefail; source {REPO}/scripts/lib/common.sh; "
              f"source {REPO}/scripts/lib/slapd.sh; {script}")


def directory_ldif():
    entries = ["ldif_base"]
    for name, (number, display) in PEOPLE.items():
        entries.append(f"ldif_person {name} {number} '{display}' '{PASSWORD}'")
    # Two entries share uid=twin; one entry has no uidNumber; one has a non-numeric uidNumber.
    extra = """
cat <<LDIF
dn: uid=twin,ou=people,$HYDRA_LDAP_SUFFIX
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One

dn: cn=twin-two,ou=people,$HYDRA_LDAP_SUFFIX
objectClass: inetOrgPerson
uid: twin
cn: twin-two
sn: Two

dn: uid=nonumber,ou=people,$HYDRA_LDAP_SUFFIX
objectClass: inetOrgPerson
uid: nonumber
cn: No Number
sn: Number

LDIF
"""
    return bash_lib("; ".join(entries) + "; " + extra).stdout


class Directory:
    """The sandbox's slapd: running, stopped, frozen (SIGSTOP) or thawed."""

    def __init__(self):
        self.url = LDAP_URL

    def pid(self):
        return int((LDAP_DIR / "slapd.pid").read_text())

    def start(self):
        bash_lib(f"slapd_start {LDAP_DIR} {LDAP_URL}")

    def stop(self):
        bash_lib(f"slapd_stop {LDAP_DIR}")

    def freeze(self):
        os.kill(self.pid(), 19)  # SIGSTOP: accepts connections, never answers

    def thaw(self):
        os.kill(self.pid(), 18)  # SIGCONT


UPSTREAM = pathlib.Path("/srv/hydra-test/course.git")  # the test course's upstream repository


def config_text(courses=((str(UPSTREAM), "main", "tutorials"),), **overrides):
    """The test site's hydra.toml; `overrides` maps "section.key" to a TOML literal."""
    values = {
        "site.public_url": '"http://localhost"',
        "ldap.uri": f'"{LDAP_URL}"',
        "ldap.base": '"ou=people,dc=hydra,dc=test"',
        "ldap.timeout_seconds": "2",
        "accounts.local_uid_fallback": "true",
        "accounts.local_uid_min": "70000",
        "accounts.local_uid_max": "70100",
    }
    values.update(overrides)
    sections = {}
    for dotted, literal in values.items():
        section, key = dotted.split(".", 1)
        sections.setdefault(section, []).append(f"{key} = {literal}")
    text = "".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items())
    for repo, branch, folder in courses:
        text += f'[[courses]]\nrepo = "{repo}"\nbranch = "{branch}"\nfolder = "{folder}"\n\n'
    return text


def install_config(**overrides):
    path = pathlib.Path("/etc/hydra/hydra.toml")
    tmp = path.with_suffix(".new")
    tmp.write_text(config_text(**overrides) if "text" not in overrides else overrides["text"])
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def front_daemon_pid():
    """The front daemon's PID (hydra-detached writes it; setpriv and env exec hydra-cgi in place)."""
    return int(pathlib.Path("/run/hydra/front.pid").read_text())


def reload_apache():
    """`apache2ctl graceful`, as the README says after a change to Apache's files (it also empties
    Apache's LDAP cache), then waits until Apache says the restart is done (apache2ctl returns
    at once: a request right after it may still meet the old configuration and cache) and the
    site answers. The front needs none of it for hydra.toml: it reads the file again at its
    first request after the file changed."""
    log = pathlib.Path("/var/log/apache2/error.log")
    offset = log.stat().st_size if log.exists() else 0

    def restarted():
        with open(log, "rb") as f:
            f.seek(offset)
            return b"resuming normal operations" in f.read()
    sh("apache2ctl", "graceful")
    wait_for(restarted, timeout=60, interval=0.1)
    wait_until_the_front_answers(timeout=60)


def wait_until_the_front_answers(timeout):
    """Until /hydra/health answers 200 through Apache (the front daemon is up and reachable)."""
    wait_for(lambda: sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost/hydra/health",
                        check=False).stdout == "200", timeout=timeout, interval=0.1)


def group_with_members(group, *names):
    """Makes `group` (if missing) with exactly these members, also before their accounts exist
    (addldapuser makes them at their first visit; gpasswd wants the account): /etc/group by hand."""
    sh("groupadd", "-f", group)
    path = pathlib.Path("/etc/group")
    path.write_text(re.sub(rf"^({re.escape(group)}:[^:]*:\d+:).*$", lambda match: match.group(1) + ",".join(names),
                           path.read_text(), flags=re.M))


def slurmctld_rpcs_by_user():
    """slurmctld's RPC counts by user since the last `sdiag --reset` ({name: count})."""
    out = sh("sdiag").stdout
    section = out.split("Remote Procedure Call statistics by user", 1)[1].split("\n\n", 1)[0]
    return {match.group(1): int(match.group(2)) for match in re.finditer(r"^\s*(\S+)\s+\(\s*\d+\)\s+count:(\d+)", section, re.M)}


def start_site():
    """hydra installed by scripts/install-site, Apache running with LDAP Basic auth."""
    auth = pathlib.Path("/tmp/hydra-test-auth.conf")
    auth.write_text((REPO / "apache/auth-examples/ldap-basic.conf").read_text()
                    .replace("ldap://127.0.0.1:3389/", LDAP_URL))
    cfg = pathlib.Path("/tmp/hydra-test.toml")
    cfg.write_text(config_text())
    sh(REPO / "scripts/install-site", BIN, "--config", cfg, "--auth", auth)
    Upstream(UPSTREAM).create({"README.md": "# Test course\n", "lesson1.ipynb": notebook("lesson one"),
                                "data/numbers.csv": "1,2,3\n"})
    # A local account whose UID the directory also gives to "clash".
    sh("useradd", "--uid", "20900", "--no-log-init", "localclash")
    sh("apache2ctl", "start")
    wait_for(lambda: sh("curl", "-s", "-o", "/dev/null", f"{SITE_URL}/hydra/health", check=False).returncode == 0)


def restart_gate():
    """hydra-gate reads hydra.toml when it starts: after install_config, for [gate] changes."""
    sh(PREFIX / "hydra-detached", "gate", "restart")


def stop_site():
    sh("apache2ctl", "stop", check=False)


def start_directory():
    ldif = pathlib.Path("/tmp/hydra-test-directory.ldif")
    ldif.write_text(directory_ldif())
    bash_lib(f"slapd_create {LDAP_DIR} {ldif} admin-secret")
    d = Directory()
    d.start()
    return d


class SlurmCluster:
    """The sandbox's Slurm cluster (scripts/slurm-cluster): munged and slurmctld here (the web
    host), node1 and node2 each in network, UTS and mount namespaces of their own (own hostname,
    own address, own /tmp and /run; /home shared), partition "hydra" with 16 CPUs a node."""

    SCRIPT = REPO / "scripts/slurm-cluster"
    STATE = pathlib.Path("/run/hydra-test-slurm")
    LOGS = pathlib.Path("/var/log/hydra-test-slurm")
    PARTITION = "hydra"
    NODES = ("node1", "node2")
    DAEMONS = {"munged": "munged", "slurmctld": "slurmctld", **{f"slurmd-{n}": "slurmd" for n in NODES}}
    GONE = {"CANCELLED", "COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE", "OUT_OF_MEMORY"}

    def up(self):
        """Brings it up (or finds it up); returns the seconds it took."""
        start = time.monotonic()
        sh(self.SCRIPT, "up", timeout=180)
        return time.monotonic() - start

    def down(self):
        start = time.monotonic()
        sh(self.SCRIPT, "down", timeout=120)
        return time.monotonic() - start

    def addresses(self):
        """Node name -> address, as `up` printed them."""
        return dict(line.split() for line in (self.STATE / "nodes").read_text().splitlines() if line.strip())

    def pids(self):
        """What `up` started: name (munged, slurmctld, slurmd-nodeN) -> PID."""
        return {name: int((self.STATE / f"{name}.pid").read_text()) for name in self.DAEMONS}

    def node(self, name):
        """`scontrol show node NAME` as a dict (NodeAddr, State, CPUTot, ...)."""
        line = sh("scontrol", "show", "node", "--oneliner", name).stdout
        # Values have no spaces except a few (OS=Linux 6..., Reason=...): keys are what matters.
        return dict(re.findall(r"(?:^|\s)([A-Za-z/]+)=(\S*)", line))

    def node_states(self):
        """Node name -> state as sinfo prints it (idle, alloc, mix, down*, ...), in the partition."""
        out = sh("sinfo", "-h", "-N", "-p", self.PARTITION, "-o", "%N %t").stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def submit(self, user, *args):
        """sbatch --parsable ARGS as the account `user` (clean environment); returns the job id."""
        result = as_user(user, "sbatch", "--parsable", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(";")[0]

    def job(self, job_id):
        """squeue's view of a job: {"state", "reason", "nodes"}, or None once squeue no longer knows it."""
        result = sh("squeue", "-h", "-j", job_id, "-o", "%T|%r|%N", check=False)
        if result.returncode != 0 and "Invalid job id" in result.stderr:
            return None
        assert result.returncode == 0, result.stderr
        if not result.stdout.strip():
            return None
        state, reason, nodes = result.stdout.strip().split("|")
        return {"state": state, "reason": reason, "nodes": nodes}

    def wait_for_state(self, job_id, *states, timeout=30.0):
        """Polls squeue until the job is in one of `states` ("GONE": squeue no longer lists it, or it
        ended); returns squeue's view of it (None when gone)."""
        seen = []

        def reached():
            job = self.job(job_id)
            seen.append(job)
            if job is None or job["state"] in self.GONE:
                return "GONE" in states
            return job["state"] in states
        try:
            wait_for(reached, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"job {job_id} not {states} after {timeout}s; last seen {seen[-1]}\n{self.log_tails()}")
        return seen[-1]

    def queue(self):
        return sh("squeue", "-h", "-o", "%i %u %T %N").stdout.strip()

    def log_tails(self, lines=20):
        text = ""
        for path in sorted(self.LOGS.glob("*.log")):
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            text += f"--- {path}\n" + "\n".join(tail) + "\n"
        return text


def local_account(name, uid):
    """A throwaway local account with a home in /home (the sandbox's /etc is a throwaway copy)."""
    sh("useradd", "--uid", uid, "--create-home", "--shell", "/bin/bash", "--no-log-init", name)
    return pathlib.Path(f"/home/{name}")


def stop_process(process, grace=10):
    """SIGTERM, then SIGKILL after `grace` seconds, and reaped."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def runtime_dir_gone(name):
    """As after a reboot: <runtime_dir>/NAME (a tmpfs of its own) is no longer there."""
    path = pathlib.Path(f"/run/hydra/{name}")
    if path.is_mount():
        sh("umount", "--lazy", path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        sh("rm", "-rf", "--one-file-system", path)


def account_files():
    """The bytes of the account databases, to prove a refusal changed nothing."""
    return {path: pathlib.Path(path).read_bytes() for path in ACCOUNT_FILES}


def as_web_server(*argv, **kwargs):
    """Runs argv as www-data, as Apache's hydra-cgi would."""
    return sh("setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups", "--reset-env", *argv,
              check=False, **kwargs)


def as_user(name, *argv, **kwargs):
    """Runs argv as the account `name`, with a clean environment (as sudo -u would)."""
    return sh("setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--reset-env", *argv, check=False, **kwargs)


def refresh_mirrors():
    return as_web_server(PREFIX / "hydra-cgi", "--refresh-mirrors")


def notebook(text):
    """A small valid notebook whose one markdown cell says `text`."""
    return json.dumps({"cells": [{"cell_type": "markdown", "id": "c0", "metadata": {}, "source": text}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


class Upstream:
    """A bare repository standing in for a course's upstream, with a work tree to change it."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.work = self.path.with_suffix(".work")

    def git(self, *args):
        return sh("git", "-C", self.work, "-c", "user.name=Teacher", "-c", "user.email=t@hydra.invalid", *args)

    def create(self, files, branch="main"):
        sh("rm", "-rf", "--one-file-system", self.path, self.work)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sh("git", "init", "-q", "--bare", f"--initial-branch={branch}", self.path)
        sh("git", "init", "-q", f"--initial-branch={branch}", self.work)
        self.commit(files, message="initial")
        return self

    def commit(self, files, remove=(), message="update", push_args=()):
        for name, content in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        for name in remove:
            self.git("rm", "-q", "--", name)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        branch = self.git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        self.git("push", "-q", *push_args, str(self.path), f"HEAD:refs/heads/{branch}")
        sh("chmod", "-R", "a+rX", self.path)
        return self.git("rev-parse", "HEAD").stdout.strip()


def basic_auth(user, password=PASSWORD):
    """The Authorization header a browser sends once its sign-in prompt is answered."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class CookieJar(collections.abc.MutableMapping):
    """A browser's cookies, each with its path (sent only below it) and its lifetime (Max-Age,
    Expires). As a mapping it goes by name alone, as the tests read and plant cookies: a name's
    value is that of its longest path; setting a name sets it on every path it has (else on /);
    deleting a name removes it from every path."""

    def __init__(self):
        self.values = {}     # (name, path) -> value
        self.deadlines = {}  # (name, path) -> time.monotonic() after which it is gone (Max-Age)

    def live(self):
        """((name, path), value) of the cookies not yet expired, longest path first."""
        now = time.monotonic()
        for key in [k for k, deadline in self.deadlines.items() if deadline <= now]:
            self.values.pop(key, None)
            del self.deadlines[key]
        return sorted(self.values.items(), key=lambda item: -len(item[0][1]))

    def value(self, name, path="/"):
        """The value a request for `path` would send for `name`, or None."""
        return next((v for (n, p), v in self.live() if n == name and path.startswith(p)), None)

    def header(self, path):
        """The Cookie header of a request for `path` ("" when none)."""
        seen, parts = set(), []
        for (name, p), value in self.live():
            if path.startswith(p) and name not in seen:
                seen.add(name)
                parts.append(f"{name}={value}")
        return "; ".join(parts)

    def store(self, header, request_path):
        """A Set-Cookie header of the answer to `request_path`."""
        name, _, rest = header.partition("=")
        value, *attributes = rest.split(";")
        path = request_path.split("?")[0].rsplit("/", 1)[0] + "/"
        gone, max_age = False, None
        for attribute in attributes:
            key, _, val = attribute.strip().partition("=")
            key = key.lower()
            if key == "path" and val.startswith("/"):
                path = val if val.endswith("/") else val + "/"
            elif key == "max-age" and val.strip().lstrip("-").isdigit():
                max_age = int(val)
                gone = gone or max_age <= 0
            elif key == "expires":
                try:
                    gone = gone or email.utils.parsedate_to_datetime(val) < datetime.now(timezone.utc)
                except (TypeError, ValueError):
                    pass
        key = (name.strip(), path)
        self.deadlines.pop(key, None)
        if gone or value == "" and not attributes:
            self.values.pop(key, None)
        else:
            self.values[key] = value.strip()
            if max_age is not None:
                self.deadlines[key] = time.monotonic() + max_age

    def __getitem__(self, name):
        for (n, _), value in self.live():
            if n == name:
                return value
        raise KeyError(name)

    def __setitem__(self, name, value):
        for path in [p for n, p in self.values if n == name] or ["/"]:
            self.values[(name, path)] = value

    def __delitem__(self, name):
        keys = [k for k in self.values if k[0] == name]
        if not keys:
            raise KeyError(name)
        for key in keys:
            del self.values[key]
            self.deadlines.pop(key, None)

    def __iter__(self):
        return iter(dict.fromkeys(name for (name, _), _ in self.live()))

    def __len__(self):
        return len({name for (name, _), _ in self.live()})


class Form(HTMLParser):
    """The first POST form of a page: its id, action, hidden fields and visible field names."""

    def __init__(self, page):
        super().__init__()
        self.id = self.action = None
        self.hidden = {}
        self.visible = []
        self._inside = self._done = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.id, self.action, self._inside = a.get("id"), a.get("action") or "", True
        elif tag == "input" and self._inside and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind == "hidden":
                self.hidden[a["name"]] = a.get("value") or ""
            elif kind in ("text", "password"):
                self.visible.append(a["name"])

    def handle_endtag(self, tag):
        if tag == "form" and self._inside:
            self._inside, self._done = False, True


class Browser:
    """Just enough of a browser, for hydra's site or another (JupyterHub's, in scripts/bench): Basic
    auth when given a user (basic=False: none), a CookieJar, no automatic redirects (visit()
    follows them). keep_alive: one connection reused as a browser does (the benchmarks time
    visits so); without it, a new connection for each request."""

    def __init__(self, user=None, password=PASSWORD, host="localhost", port=80, basic=True, keep_alive=False):
        self.user, self.password, self.host, self.port = user, password, host, port
        self.origin = f"http://{host}"
        self.auth = basic_auth(user, password) if user is not None and basic else None
        self.cookies = CookieJar()
        self.keep_alive = keep_alive
        self.connection = None

    def headers(self, path, extra=None):
        """What a request for `path` carries, `extra` on top. The Accept of a browser's address bar:
        the gate sends such a visit to a stopped server through the front."""
        h = {"Host": self.host, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        if self.auth:
            h["Authorization"] = self.auth
        cookies = self.cookies.header(path)
        if cookies:
            h["Cookie"] = cookies
        h.update(extra or {})
        return h

    def connect(self, port=None, timeout=180):
        return http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(self, method, path, form=None, headers=None, body=None, port=None):
        """(status, headers, page) of one request; `port`: another of the site's ports (another
        virtual host of the same Apache)."""
        h = self.headers(path, headers)
        port = port or self.port
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
            h.setdefault("Origin", self.origin)
        for attempt in (1, 2):
            if self.connection is not None and self.connection.port != port:
                self.close()
            self.connection = self.connection or self.connect(port)
            try:
                self.connection.request(method, path, body=body, headers=h)
                response = self.connection.getresponse()
                text = response.read().decode(errors="replace")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest):
                self.close()
                # A kept-alive connection the server closed meanwhile: a browser tries a new one.
                if attempt == 2 or not self.keep_alive:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                self.cookies.store(value, path)
        if response.will_close or not self.keep_alive:
            self.close()
        return response.status, dict(response.getheaders()), text

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.request("POST", path, form=form, **kw)

    def wait_for_progress(self, url):
        """Reads a progress EventSource (JupyterHub's spawn-pending page) until an event says
        ready or failed; ConnectionError when it answers otherwise."""
        connection = self.connect()
        try:
            connection.request("GET", url, headers=self.headers(url, {"Accept": "text/event-stream"}))
            response = connection.getresponse()
            if response.status != 200:
                raise ConnectionError(f"{url.split('?')[0]} answered {response.status}")
            for raw in response:
                line = raw.decode(errors="replace").strip()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready") or event.get("failed"):
                        return
        finally:
            connection.close()


def login_form(page):
    action = re.search(r'<form id="login" method="post" action="([^"]+)"', page).group(1).replace("&amp;", "&")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return action, fields
