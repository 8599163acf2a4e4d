"""Issue 15, slices 4 and 6: ipynb-launch with `[server] backend = "slurm"` against the sandbox's
real cluster (slurmctld, munge, two slurmd nodes in namespaces of their own; scripts/slurm-cluster).
`ipynb-launch check` asks Slurm as the person; `start` submits the server as the person's job,
which listens on TCP on its node and reports its port through the shared home; reuse, stop
(scancel), a job cancelled behind hydra's back, a full partition, concurrent starts.

Accounts: kathleen, ida, mary (this file's own).
"""
import concurrent.futures
import json
import os
import pathlib
import re
import signal
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PREFIX, SlurmCluster, as_user, config_text, install_config, restart_gate, sh, wait_for
from hydra_site import group_with_members, slurmctld_rpcs_by_user
from e2e_site import reload_apache
from load_support import (JUPYTER_PYTHON, KERNEL_ROUNDTRIP, assert_in_lab, browser_for, percentile, visit,
                          write_figures)

LAUNCH = PREFIX / "ipynb-launch"
STARTED, REUSED, WAITING, TEMPORARY, REFUSED, CONFIGURATION = 0, 1, 2, 75, 77, 78
PORTS = (21000, 21999)
SLURM = {
    "server.backend": '"slurm"',
    "server.start_timeout_seconds": "60",
    "slurm.partition": '"hydra"',
    "slurm.time_limit": '"30"',
    "slurm.port_range": f"[{PORTS[0]}, {PORTS[1]}]",
    "admin.users": '["ida"]',
}
FIGURES = []


@pytest.fixture(scope="module", autouse=True)
def backend_figures(request):
    yield
    if FIGURES:
        write_figures("slurm-backend.txt", ["ipynb-launch start with backend = \"slurm\" (issue 15), its own timing (--json seconds)"]
                      + FIGURES, request)


def slurm_config(**overrides):
    install_config(**{**SLURM, **overrides})


def site_reads_config():
    """hydra-gate and hydra-cgi read hydra.toml when they start (the helpers at every run)."""
    restart_gate()
    reload_apache()


@pytest.fixture(scope="module")
def slurm_site(site, slurm_cluster):
    slurm_config()
    site_reads_config()
    yield slurm_cluster
    install_config()
    site_reads_config()


@pytest.fixture()
def person(slurm_site):
    """A hydra person with no job, whose jobs are cancelled again afterwards."""
    names = []

    def make(name):
        result = sh(PREFIX / "addldapuser", name, check=False)
        assert result.returncode in (0, 1), result.stderr
        names.append(name)
        return name
    yield make
    for name in names:
        as_user(name, LAUNCH, "stop")
    wait_for(lambda: jobs_of(*names) == [], timeout=30)


def what_happened(name):
    """For a failure's message: the queue, the person's endpoint and job output, the gate's log."""
    def tail(path, lines=15):
        try:
            return "\n".join(pathlib.Path(path).read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return str(error)
    return (f"squeue:\n{sh('squeue', '-a', '-t', 'all', '-o', '%i %u %T %N %r').stdout}\n"
            f"endpoint: {tail(f'/run/hydra/.front/endpoints/{name}')}\n"
            f"job output:\n{tail(f'/home/{name}/.hydra/slurm/job.out')}\n"
            f"gate log:\n{tail('/var/log/hydra/gate.log')}\n")


def jobs_of(*names):
    """squeue's live jobs of these accounts: [(id, user, state, node)]."""
    out = sh("squeue", "-h", "-o", "%i %u %T %N").stdout
    return [tuple(line.split(" ")) for line in out.splitlines() if line.split(" ")[1] in names]


def start(name, *extra):
    result = as_user(name, LAUNCH, "start", "--json", *extra, timeout=180)
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result, report


def api_status(address, port, name, token=None, as_account=None):
    """GET /user/NAME/api/status at the node's address (TLS; the certificate not checked), as the
    web host (root) or another account."""
    argv = ["curl", "-k", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-H", "Host: localhost"]
    if token:
        argv += ["-H", f"Authorization: token {token}"]
    argv.append(f"https://{address}:{port}/user/{name}/api/status")
    result = as_user(as_account, *argv) if as_account else sh(*argv, check=False)
    return result.stdout.strip()


def shown_pin(address, port):
    """The pin (SHA-256 of its DER) of the certificate the server at address:port shows."""
    import hashlib
    import socket
    import ssl
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def test_check_asks_slurm_as_the_person_and_submits_nothing(person, slurm_site):
    name = person("kathleen")
    result = as_user(name, LAUNCH, "check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["slurm"]["partition"]["name"] == "hydra"
    assert report["slurm"]["partition"]["nodes_by_state"] == {"idle": 2}
    assert " to start at " in report["slurm"]["test_submission"] and "partition hydra" in report["slurm"]["test_submission"]
    assert jobs_of(name) == []


@pytest.mark.parametrize("overrides, status, words", [
    ({"slurm.partition": '"nosuch"'}, CONFIGURATION, "the partition 'nosuch' (slurm.partition) does not exist"),
    ({"slurm.cpus": "64"}, REFUSED, "Slurm would not accept this person's server job"),
])
def test_check_says_what_slurm_would_refuse(person, overrides, status, words):
    name = person("kathleen")
    slurm_config(**overrides)
    try:
        result = as_user(name, LAUNCH, "check")
    finally:
        slurm_config()
    assert result.returncode == status, result.stdout + result.stderr
    assert words in result.stderr + result.stdout


def test_first_start_runs_the_server_on_a_compute_node_and_the_second_reuses_its_job(person, slurm_site):
    name = person("kathleen")
    result, report = start(name)
    assert result.returncode == STARTED, result.stderr
    FIGURES.append(f"  first start (sbatch to answering lab)  {report['seconds']:.2f} s")
    assert report["outcome"] == "started" and report["node"] in SlurmCluster.NODES
    assert report["address"] == slurm_site.addresses()[report["node"]]
    assert PORTS[0] <= report["port"] <= PORTS[1]
    assert "socket" not in report and "pid" not in report
    assert jobs_of(name) == [(report["job"], name, "RUNNING", report["node"])]
    # The server answers at the node's address with the token, and only with it.
    assert api_status(report["address"], report["port"], name, report["token"]) == "200"
    assert api_status(report["address"], report["port"], name) == "403"
    assert api_status(report["address"], report["port"], name, "0" * 64) == "403"
    # Its kernel runs on the node: 1+1 and the kernel's own hostname, over the channels websocket.
    for code, expected in (("1+1", "2"), ("__import__('socket').gethostname()", repr(report["node"]))):
        kernel = sh(JUPYTER_PYTHON, KERNEL_ROUNDTRIP, f"https://{report['address']}:{report['port']}", name, "--insecure",
                    "--token", report["token"], "--host", "localhost", "--code", code, "--expect", expected, check=False)
        assert kernel.returncode == 0, kernel.stdout + kernel.stderr
    # The token never reaches a command line or the job's environment; the file it came in is gone.
    job = sh("scontrol", "show", "job", report["job"]).stdout
    assert report["token"] not in job
    home = pathlib.Path(f"/home/{name}/.hydra/slurm")
    assert not (home / "token").exists()
    assert (home / "endpoint").read_text().split() == [report["job"], report["node"], str(report["port"])]
    # TLS with this start's certificate: the one the pin names; its key left the shared home.
    assert shown_pin(report["address"], report["port"]) == report["pin"]
    assert not (home / "tls.key").exists() and not (home / "tls.crt").exists()
    assert api_status(report["address"], report["port"], name, report["token"]).startswith("200")
    plain = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
               f"http://{report['address']}:{report['port']}/user/{name}/api/status", check=False).stdout
    assert plain in ("000", "400"), plain   # no HTTP in clear

    again, second = start(name)
    assert again.returncode == REUSED, again.stderr
    FIGURES.append(f"  start that reuses the job              {second['seconds']:.2f} s")
    assert (second["job"], second["port"], second["token"]) == (report["job"], report["port"], report["token"])
    assert len(jobs_of(name)) == 1

    status = as_user(name, LAUNCH, "status", "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["running"] is True and shown["job"]["id"] == report["job"] and shown["port"] == report["port"]
    assert "token" not in status.stdout and report["token"] not in status.stdout


def test_another_account_on_the_same_node_gets_403_without_the_token(person, slurm_site):
    """Threat: any account of the cluster can connect to a node's ports."""
    name, other = person("kathleen"), person("ida")
    _, report = start(name)
    assert report and report["outcome"] in ("started", "reused")
    job = slurm_site.submit(other, "-w", report["node"], f"--chdir=/home/{other}", f"--output=/home/{other}/probe-%j.out",
                            "--wrap", f"curl -k -s -o /dev/null -w '%{{http_code}} ' --max-time 5 -H 'Host: localhost' "
                                      f"https://{report['address']}:{report['port']}/user/{name}/api/contents; "
                                      f"curl -k -s -o /dev/null -w '%{{http_code}} ' --max-time 5 -H 'Host: localhost' "
                                      f"https://127.0.0.1:{report['port']}/user/{name}/api/contents; hostname")
    slurm_site.wait_for_state(job, "GONE", timeout=60)
    out = pathlib.Path(f"/home/{other}/probe-{job}.out").read_text().split()
    assert out == ["403", "403", report["node"]], out


def kernel_through_apache(browser, name, code, expected):
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    result = sh(JUPYTER_PYTHON, KERNEL_ROUNDTRIP, "http://localhost", name, "--cookie", cookie,
                "--xsrf", browser.cookies.get("_xsrf", ""), "--header", f"Authorization: {browser.auth}",
                "--code", code, "--expect", expected, check=False, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_first_visit_through_apache_lands_in_the_lab_on_a_compute_node(person, slurm_site):
    name = person("kathleen")
    browser = browser_for(name)
    result = visit(browser)
    assert_in_lab(result, name)
    FIGURES.append(f"  first visit through Apache, to the lab  {result.seconds:.2f} s")
    [(job, _, state, node)] = jobs_of(name)
    assert state == "RUNNING" and node in SlurmCluster.NODES
    kernel_through_apache(browser, name, "1+1", "2")
    kernel_through_apache(browser, name, "__import__('socket').gethostname()", repr(node))
    # The next visit reuses the job.
    assert_in_lab(visit(browser), name)
    assert [j[0] for j in jobs_of(name)] == [job]
    # Another person's browser: Apache's owner check, as with local servers.
    status, _, _ = browser_for("ida").request("GET", f"/user/{name}/api/status")
    assert status == 403


def test_warm_visits_to_a_running_job_ask_slurm_nothing(person, slurm_site):
    """Issue 26: a returning browser whose job runs goes straight to the lab on the front's
    endpoint and the gate's view of the cluster, with no ipynb-launch start (no squeue, sinfo
    or probe as the person); after it, the courses' sync alone. The gate's own looks (squeue every
    3 s; sinfo once a minute) cost the same whatever the visits: at most two RPCs a look."""
    name = person("kathleen")
    browser = browser_for(name)
    sh("sdiag", "--reset")
    first = visit(browser)
    assert_in_lab(first, name)
    started = slurmctld_rpcs_by_user().get(name, 0)
    FIGURES.append(f"  a first visit's start in {first.seconds:.1f} s: {started} slurmctld RPCs as the person")
    [(job, _, _, _)] = jobs_of(name)
    sh("sdiag", "--reset")
    began = time.monotonic()
    for _ in range(10):
        browser.cookies.pop("hydra-recent", None)  # through the front each time, not Apache's shortcut
        result = visit(browser)
        assert_in_lab(result, name)
        assert len(result.steps) <= 4, result.trail()  # no starting page: the warm path
        time.sleep(1)  # a person reloading
    time.sleep(2)  # the visits' deferred sync
    seconds = time.monotonic() - began
    rpcs = slurmctld_rpcs_by_user()
    FIGURES.append(f"  10 warm visits to a job, {seconds:.0f} s: slurmctld RPCs by user {rpcs}")
    assert rpcs.get(name, 0) == 0, rpcs
    assert rpcs.get("www-data", 0) <= 2 * (seconds // 3 + 1), rpcs
    assert [j[0] for j in jobs_of(name)] == [job]


def site_metric(name, label):
    """A metric of /hydra/metrics (open to this address without a sign-in) by one label's value."""
    text = sh("curl", "-s", "http://localhost/hydra/metrics").stdout
    return {sample.labels[label]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def gate_job_requests():
    """hydra_gate_job_requests_total by connection (kept, new)."""
    return site_metric("hydra_gate_job_requests_total", "connection")


def requests_since(before):
    after = gate_job_requests()
    return {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("kept", "new")}


def gate_connections_to(address, port):
    """The web host's established TCP connections to address:port (the gate's, in these tests)."""
    out = sh("ss", "-Htn", "state", "established", "dst", f"{address}", "dport", "=", f":{port}").stdout
    return len(out.splitlines())


def contents(browser, name, path):
    status, _, text = browser.request("GET", f"/user/{name}/api/contents/{path}?content=1", headers={"Accept": "application/json"})
    assert status == 200, (status, text[:300])
    return json.loads(text)["content"]


def test_the_gate_keeps_its_tls_connection_to_a_job_for_the_persons_next_requests(person, slurm_site):
    """Issue 26: a GET to a job's server goes over a TLS connection the gate kept from the
    person's earlier ones (no handshake per request); a PUT with a body still gets one of its
    own, and what it saved is what the next kept GET reads."""
    name = person("kathleen")
    browser = browser_for(name)
    assert_in_lab(visit(browser), name)
    _, address, port, _ = pathlib.Path(f"/run/hydra/.front/endpoints/{name}").read_text().split()
    before = gate_job_requests()
    for _ in range(20):
        status, _, _ = browser.request("GET", f"/user/{name}/api/status")
        assert status == 200
    status, _, page = browser.request("GET", f"/user/{name}/lab")
    assert status == 200 and "jupyter-config-data" in page
    # A HEAD's answer has no body whatever its length says (Jupyter's lab page has no HEAD: 405);
    # the connection carries the next GET.
    status, _, _ = browser.request("HEAD", f"/user/{name}/lab")
    assert status in (200, 405), status
    for _ in range(2):
        status, _, _ = browser.request("GET", f"/user/{name}/api/status")
        assert status == 200
    counted = requests_since(before)
    FIGURES.append(f"  23 GETs and a HEAD to a job through Apache: {counted} (hydra_gate_job_requests_total)")
    # At most one new connection per gate thread (Apache's connections to the gate are spread over them).
    assert counted["new"] <= 2 and counted["kept"] >= 22, counted
    assert 1 <= gate_connections_to(address, port) <= 2
    status, _, _ = browser.request("PUT", f"/user/{name}/api/contents/kept.txt", headers={"Content-Type": "application/json", "X-XSRFToken": browser.cookies.get("_xsrf", "")},
                                   body=json.dumps({"type": "file", "format": "text", "content": "saved over its own"}).encode())
    assert status in (200, 201), status
    assert contents(browser, name, "kept.txt") == "saved over its own"
    assert requests_since(before)["new"] <= 2


def test_a_kept_connection_carries_only_its_own_persons_requests(person, slurm_site):
    """Threat: a connection kept for one person's server answering another person's request
    (each person's files read through Apache, interleaved from four threads at once)."""
    names = [person("kathleen"), person("ida")]
    browsers = {name: browser_for(name) for name in names}
    for name in names:
        assert_in_lab(visit(browsers[name]), name)
        assert as_user(name, "sh", "-c", f"echo -n {name} > /home/{name}/whoami.txt").returncode == 0
    before = gate_job_requests()

    def signed_in(name):
        browser = browser_for(name)   # one per thread, with the cookies of the person's lab
        browser.cookies.update(browsers[name].cookies)
        return browser

    def read_both(_):
        mine = {name: signed_in(name) for name in names}
        return [(name, contents(mine[name], name, "whoami.txt")) for name in names * 5]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = [answer for batch in pool.map(read_both, range(4)) for answer in batch]
    assert len(answers) == 40 and all(name == content for name, content in answers), answers
    assert requests_since(before)["kept"] > 0


def test_a_kept_connection_the_server_lost_without_a_word_is_replaced_and_the_request_answered(person, slurm_site):
    """A kept connection whose server side is gone while the gate never heard (the node's link
    was down when its reset was sent): the next GET meets a reset before any answer, and the
    gate sends it once more on a new connection (a GET, so sending it again is harmless)."""
    name = person("kathleen")
    browser = browser_for(name)
    assert_in_lab(visit(browser), name)
    _, address, port, _ = pathlib.Path(f"/run/hydra/.front/endpoints/{name}").read_text().split()
    [(_, _, _, node)] = jobs_of(name)
    in_node = ["ip", "netns", "exec", f"hydra-{node}"]
    web_host = address.rsplit(".", 1)[0] + ".1"

    def lose_the_servers_side():
        """The server's side of the kept connections ended with the node's link down, so that
        its reset goes nowhere; True when the gate still holds them afterwards."""
        for _ in range(4):
            assert browser.request("GET", f"/user/{name}/api/status")[0] == 200
        kept = gate_connections_to(address, port)
        assert kept >= 1
        # The gate has acknowledged every byte (a delayed ACK reaching the node after the kill
        # would be answered with a reset).
        wait_for(lambda: all(line.split()[1] == "0" for line in sh(*in_node, "ss", "-Htn", "state", "established",
                                                                   "sport", "=", f":{port}").stdout.splitlines()), timeout=5)
        time.sleep(0.3)
        sh(*in_node, "ip", "link", "set", "eth0", "down")
        try:
            sh(*in_node, "ss", "-K", "-tn", "state", "established", "sport", "=", f":{port}")
        finally:
            sh(*in_node, "ip", "link", "set", "eth0", "up")
            sh(*in_node, "ip", "route", "replace", "default", "via", web_host)
        time.sleep(0.5)
        return gate_connections_to(address, port) == kept
    # Once in a while the gate hears of it anyway (then the case is not set up): again, then.
    assert any(lose_the_servers_side() for _ in range(3))
    before = gate_job_requests()
    for _ in range(4):
        status, _, _ = browser.request("GET", f"/user/{name}/api/status")
        assert status == 200, what_happened(name)
    counted = requests_since(before)
    assert counted["new"] >= 1, counted


def test_the_admin_page_lists_running_and_queued_jobs_and_its_stop_button_cancels_one(person, slurm_site):
    name, admin, queued = person("kathleen"), person("ida"), person("mary")
    assert_in_lab(visit(browser_for(name)), name)
    [(job, _, _, node)] = jobs_of(name)
    fillers = fill_the_partition(slurm_site, admin)
    try:
        result, waiting = start(queued)
        assert result.returncode == WAITING, result.stderr
        ida = browser_for(admin)
        status, _, page = ida.request("GET", "/hydra/admin")
        assert status == 200 and "Servers run as Slurm jobs in partition hydra" in page, page[:2000]
        assert f"Slurm job {job} on {node}" in page and f"Slurm job {waiting['queued']['id']}, pending" in page, page
        token = re.search(r'name="_xsrf" value="([0-9]+\.[0-9a-f]{64})"', page).group(1)
        status, _, _ = ida.post("/hydra/admin/stop", {"user": name, "_xsrf": token})
        assert status == 303
        assert jobs_of(name) == []
        assert not pathlib.Path(f"/run/hydra/.front/endpoints/{name}").exists()
    finally:
        sh("scancel", *fillers)


def test_the_gate_refuses_an_endpoint_that_is_not_the_persons_running_job(person, slurm_site):
    """Threat: an endpoint pointing the gate at another person's job (the front writes it, but
    the gate trusts nothing it has not checked against Slurm)."""
    name, other = person("kathleen"), person("ida")
    browser = browser_for(name)
    assert_in_lab(visit(browser), name)
    _, theirs = start(other)
    endpoints = pathlib.Path("/run/hydra/.front/endpoints")
    mine = (endpoints / name).read_text()
    planted = endpoints / f".{name}.planted"
    planted.write_text(f"{theirs['job']} {theirs['address']} {theirs['port']} {theirs['pin']}\n")
    os.utime(planted, (1, 1))   # older than the gate's last look at the cluster
    planted.replace(endpoints / name)
    try:
        status, _, _ = browser.request("GET", f"/user/{name}/api/status")
        assert status in (302, 503), status   # not their server: no server (a page visit goes to the front)
    finally:
        (endpoints / name).write_text(mine)
    status, _, _ = browser.request("GET", f"/user/{name}/api/status")
    assert status == 200


def test_the_gate_speaks_only_to_the_certificate_its_persons_start_made(person, slurm_site):
    """Threat: something else listening where the person's server was (another person's job on
    the node, a process that took the port): the gate's TLS accepts only the pinned certificate,
    so nothing of the person's request reaches it."""
    name, other = person("kathleen"), person("ida")
    browser = browser_for(name)
    assert_in_lab(visit(browser), name)
    _, theirs = start(other)
    endpoint = pathlib.Path(f"/run/hydra/.front/endpoints/{name}")
    mine = endpoint.read_text()
    job, address, port, pin = mine.split()
    # Each start's certificate is its own: another person's job shows another one.
    assert shown_pin(theirs["address"], theirs["port"]) == theirs["pin"] != pin
    assert shown_pin(address, int(port)) == pin
    gate_log = pathlib.Path("/var/log/hydra/gate.log")
    logged = len(gate_log.read_text())
    endpoint.write_text(f"{job} {address} {port} {theirs['pin']}\n")   # her own job, with another start's pin
    try:
        # An API call hears 502; a page visit would go through the front, which starts a new job.
        status, _, _ = browser.request("GET", f"/user/{name}/api/status", headers={"Accept": "application/json"})
        assert status == 502, status
        assert "did not show the certificate the start of" in gate_log.read_text()[logged:]
    finally:
        endpoint.write_text(mine)
    status, _, _ = browser.request("GET", f"/user/{name}/api/status")
    assert status == 200


def test_no_token_and_no_http_cross_the_cluster_network_in_clear(person, slurm_site):
    """Threat: any account on the cluster's network sniffing it. Everything between the web host
    and the nodes is captured (tcpdump on their links) while a first visit starts a job, logs in
    and runs a kernel through Apache: no token, no HTTP."""
    import subprocess
    name = person("kathleen")
    as_user(name, LAUNCH, "stop")
    capture = pathlib.Path("/tmp/hydra-test-cluster.pcap")
    capture.unlink(missing_ok=True)
    # --immediate-mode and a large buffer: every packet reaches the file as it passes, none is
    # held in the kernel's ring when tcpdump is stopped or dropped while the machine is busy.
    dump = subprocess.Popen(["tcpdump", "-i", "any", "--immediate-mode", "-B", "32768", "-U", "-Z", "root", "-s", "0",
                             "-w", str(capture), "net", "169.254.0.0/16"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def server_packets():
        return sh("tcpdump", "-r", capture, "-nn", f"host {address} and tcp port {port}", check=False).stdout.splitlines()
    try:
        wait_for(lambda: capture.exists() and capture.stat().st_size >= 24, timeout=10)
        time.sleep(0.5)
        browser = browser_for(name)
        assert_in_lab(visit(browser), name)
        kernel_through_apache(browser, name, "1+1", "2")
        token = (pathlib.Path(f"/run/hydra/{name}/login-token")).read_bytes()
        _, address, port, _ = pathlib.Path(f"/run/hydra/.front/endpoints/{name}").read_text().split()
        deadline = time.monotonic() + 10   # until the file holds the visit (the assert below says if not)
        while len(server_packets()) <= 20 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        dump.terminate()
        _, said = dump.communicate(timeout=10)
    captured = capture.read_bytes()
    packets = server_packets()
    FIGURES.append(f"  captured on the cluster's links during a first visit: {len(captured)} bytes, "
                   f"{len(packets)} packets to or from the server's port")
    assert len(packets) > 20, (len(captured), said)   # the visit's traffic was seen
    assert len(token) == 64 and token not in captured
    for clear in (b"HTTP/1.", b"Authorization: token", b"_xsrf=", b"password=", f"/user/{name}/".encode()):
        assert clear not in captured, clear
    capture.unlink()


def test_stop_cancels_the_job(person, slurm_site):
    name = person("kathleen")
    _, report = start(name)
    result = as_user(name, LAUNCH, "stop")
    assert result.returncode == 0 and "stopped" in result.stdout + result.stderr
    assert jobs_of(name) == []
    assert api_status(report["address"], report["port"], name, report["token"]) == "000"
    assert not pathlib.Path(f"/home/{name}/.hydra/slurm/endpoint").exists()
    status = json.loads(as_user(name, LAUNCH, "status", "--json").stdout)
    assert status["running"] is False


def test_a_job_cancelled_behind_hydras_back_is_replaced_at_the_next_start(person, slurm_site):
    """Rule: ServerLifecycleTests "slurm: the job is no longer in the queue"; end to end here."""
    name = person("kathleen")
    _, first = start(name)
    sh("scancel", first["job"])
    slurm_site.wait_for_state(first["job"], "GONE", timeout=30)
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert second["job"] != first["job"] and second["token"] != first["token"]
    assert api_status(second["address"], second["port"], name, second["token"]) == "200"
    assert [job[0] for job in jobs_of(name)] == [second["job"]]


def test_an_idle_server_and_the_time_limit_end_the_job_and_the_next_start_submits_another(person, slurm_site):
    """Rule: ServerLifecycleTests "slurm: the time limit was reached"; end to end here."""
    idle, limited = person("kathleen"), person("ida")
    slurm_config(**{"server.idle_timeout_seconds": "1"})    # Jupyter looks once a minute
    _, first_idle = start(idle)
    slurm_config(**{"server.idle_timeout_seconds": "0", "slurm.time_limit": '"1"'})   # one minute
    _, first_limited = start(limited)
    slurm_config()
    began = time.monotonic()
    slurm_site.wait_for_state(first_idle["job"], "GONE", timeout=150)
    FIGURES.append(f"  idle server's job ended after           {time.monotonic() - began:.0f} s (idle_timeout_seconds = 1)")
    slurm_site.wait_for_state(first_limited["job"], "GONE", timeout=150)
    FIGURES.append(f"  time-limited job ended after            {time.monotonic() - began:.0f} s (time_limit = 1 minute)")
    for name, first in ((idle, first_idle), (limited, first_limited)):
        result, again = start(name)
        assert result.returncode == STARTED, result.stderr
        assert again["job"] != first["job"]
        assert api_status(again["address"], again["port"], name, again["token"]) == "200"


def test_a_forged_record_pointing_elsewhere_is_never_reused(person, slurm_site):
    """Threat: the person rewrites server.json (in their own runtime directory) so that the
    site's answer, and the front's endpoint, name another address. Rule: ServerLifecycleTests
    "slurm: forged record pointing the token at another address"; end to end here."""
    name = person("kathleen")
    _, first = start(name)
    record_path = pathlib.Path(f"/run/hydra/{name}/server.json")
    record = json.loads(record_path.read_text())
    assert record["job"] == first["job"] and record["address"] == first["address"]
    record["address"] = "127.0.0.1"
    record_path.write_text(json.dumps(record))
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert second["job"] != first["job"] and second["address"] == slurm_site.addresses()[second["node"]]


def test_an_orphan_job_without_a_record_is_cancelled_at_the_next_start(person, slurm_site):
    """A start killed between sbatch and writing its record must not leave a job running."""
    name = person("kathleen")
    _, first = start(name)
    sh("rm", "-f", f"/run/hydra/{name}/server.json")
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert second["job"] != first["job"]
    slurm_site.wait_for_state(first["job"], "GONE", timeout=30)
    assert [job[0] for job in jobs_of(name)] == [second["job"]]


def test_concurrent_starts_submit_one_job(person, slurm_site):
    """Rule: ServerLifecycleTests "slurm: a start that lost the race finds the winner's queued job"; end to end here."""
    name = person("mary")
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: start(name), range(8)))
    FIGURES.append(f"  8 concurrent starts of one person      {time.monotonic() - began:.2f} s (all answered)")
    codes = sorted(result.returncode for result, _ in results)
    assert codes == [STARTED] + [REUSED] * 7, [r.stderr for r, _ in results]
    assert len({report["job"] for _, report in results}) == 1
    assert len(jobs_of(name)) == 1


def fill_the_partition(slurm_site, filler):
    """Every CPU still free on both nodes taken by another person's jobs; returns their ids."""
    jobs = []
    for node in SlurmCluster.NODES:
        state = slurm_site.node(node)
        free = int(state["CPUTot"]) - int(state["CPUAlloc"])
        if free > 0:
            jobs.append(slurm_site.submit(filler, "-w", node, f"--cpus-per-task={free}", f"--chdir=/home/{filler}",
                                          "--output=/dev/null", "--wrap", "exec sleep 300"))
    for job in jobs:
        slurm_site.wait_for_state(job, "RUNNING")
    return jobs


def test_a_job_queued_in_a_full_partition_keeps_its_place_and_then_serves(person, slurm_site):
    """Rules: ServerLifecycleTests "slurm: a queued job an earlier visit submitted" and the queued looks; end to end here."""
    name, filler = person("kathleen"), person("ida")
    fillers = fill_the_partition(slurm_site, filler)
    began = time.monotonic()
    result, report = start(name)
    assert result.returncode == WAITING, result.stderr
    assert report["outcome"] == "waiting" and report["queued"]["state"] == "PENDING"
    FIGURES.append(f"  a new job found queued after            {time.monotonic() - began:.1f} s (exit 2)")
    waiting = report["queued"]["id"]
    assert [job[0] for job in jobs_of(name)] == [waiting]
    # A second start looks in on the same job: no second job, no lost place, and no long wait.
    began = time.monotonic()
    result, again = start(name)
    assert result.returncode == WAITING and again["queued"]["id"] == waiting
    FIGURES.append(f"  a later start looking in on it          {time.monotonic() - began:.1f} s")
    assert [job[0] for job in jobs_of(name)] == [waiting]
    wait_for(lambda: slurm_site.job(waiting)["reason"] == "Resources", timeout=30)
    status = as_user(name, LAUNCH, "status")
    assert f"waiting: job {waiting} is PENDING (Resources)" in status.stdout + status.stderr
    sh("scancel", *fillers)
    result, report = start(name)
    assert result.returncode == STARTED, result.stderr
    assert report["job"] == waiting
    assert api_status(report["address"], report["port"], name, report["token"]) == "200"


def test_the_starting_page_shows_the_queued_job_and_turns_into_the_lab(person, slurm_site):
    name, filler = person("mary"), person("ida")
    fillers = fill_the_partition(slurm_site, filler)
    browser = browser_for(name)
    status, headers, page = browser.request("GET", "/")
    assert status == 200 and "Refresh" in headers, page[:500]
    assert "waits for a place on the cluster" in page and "is pending" in page, page[:1500]
    [(waiting, _, state, _)] = jobs_of(name)
    assert state == "PENDING"
    wait_for(lambda: slurm_site.job(waiting)["reason"] == "Resources", timeout=30)
    status, _, page = browser.request("GET", "/")
    assert "nodes are busy; reason: Resources" in page, page[:1500]
    sh("scancel", *fillers)
    result = visit(browser)          # follows the page's Refresh
    assert_in_lab(result, name)
    assert [job[0] for job in jobs_of(name)] == [waiting]


def test_ten_concurrent_first_visits_give_one_job_and_all_reach_the_lab(person, slurm_site):
    name = person("kathleen")
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: visit(browser_for(name)), range(10)))
    for result in results:
        assert_in_lab(result, name)
    assert len(jobs_of(name)) == 1


def herd(names):
    """First visits of all `names` at once (released together); (seconds to each one's lab, the
    visits). Each visit follows the starting pages, as a browser does."""
    barrier = threading.Barrier(len(names))

    def one(name):
        browser = browser_for(name)
        barrier.wait()
        began = time.monotonic()
        result = visit(browser, max_steps=400, patience=600)
        return time.monotonic() - began, result
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        timed = list(pool.map(one, names))
    for name, (_, result) in zip(names, timed):
        assert_in_lab(result, name)
    return [seconds for seconds, _ in timed]


def test_a_herd_of_30_new_people_reaches_their_labs_on_both_nodes_beside_the_local_backend(slurm_site):
    """Issue 15's herd: 30 first visits at once with each backend, one after the other in this run."""
    local, slurm = [f"drove{i:02d}" for i in range(30)], [f"flock{i:02d}" for i in range(30)]
    install_config()
    site_reads_config()
    try:
        local_seconds = herd(local)
    finally:
        for name in local:
            as_user(name, LAUNCH, "stop")
        slurm_config()
        site_reads_config()
    try:
        slurm_seconds = herd(slurm)
        jobs = jobs_of(*slurm)
        assert len(jobs) == 30 and {job[3] for job in jobs} == set(SlurmCluster.NODES), jobs
    finally:
        for name in slurm:
            as_user(name, LAUNCH, "stop")
    wait_for(lambda: jobs_of(*slurm) == [], timeout=60)

    # Slurm's own part, for comparison: submission to RUNNING of a job that does nothing.
    latencies = []
    for _ in range(5):
        began = time.monotonic()
        job = slurm_site.submit("flock00", "--chdir=/home/flock00", "--output=/dev/null", "--wrap", "exec sleep 30")
        slurm_site.wait_for_state(job, "RUNNING")
        latencies.append(time.monotonic() - began)
        sh("scancel", job)
    wait_for(lambda: jobs_of("flock00") == [], timeout=60)

    def line(label, values):
        return (f"  herd of 30, {label:5}: to the lab p50 {percentile(values, 0.5):5.1f} s, p90 {percentile(values, 0.9):5.1f} s, "
                f"last {max(values):5.1f} s")
    FIGURES.append(line("local", local_seconds))
    FIGURES.append(line("slurm", slurm_seconds))
    FIGURES.append(f"  herd p50 slurm / local: {percentile(slurm_seconds, 0.5) / percentile(local_seconds, 0.5):.2f}; "
                   f"Slurm's own submit-to-RUNNING (sbatch of a job that sleeps, median of 5): {percentile(latencies, 0.5):.2f} s")


def test_a_controller_that_does_not_answer_is_a_temporary_failure_and_nothing_is_submitted(person, slurm_site):
    name = person("mary")
    controller = slurm_site.pids()["slurmctld"]
    os.kill(controller, signal.SIGSTOP)   # accepts connections, never answers
    try:
        check = as_user(name, LAUNCH, "check")
        started, _ = start(name)
    finally:
        os.kill(controller, signal.SIGCONT)
    assert check.returncode == TEMPORARY, check.stdout + check.stderr
    assert "the Slurm controller did not answer" in check.stdout + check.stderr
    assert started.returncode == TEMPORARY, started.stderr
    assert "the Slurm controller did not answer" in started.stderr
    assert jobs_of(name) == []
    # The cluster as it was, for what follows (slurmctld may look at its nodes again first).
    wait_for(lambda: set(slurm_site.node_states().values()) == {"idle"}, timeout=60)


def test_a_lost_node_sends_the_next_visit_to_a_new_job_on_the_other_node(person, slurm_site):
    """Rule: ServerLifecycleTests "slurm: running on another node than recorded"; end to end here."""
    name = person("kathleen")
    browser = browser_for(name)
    assert_in_lab(visit(browser), name)
    [(job, _, _, node)] = jobs_of(name)
    os.kill(slurm_site.pids()[f"slurmd-{node}"], signal.SIGKILL)
    try:
        began = time.monotonic()
        # slurmctld notices after SlurmdTimeout (15 s) and ends the job (NODE_FAIL; never requeued).
        slurm_site.wait_for_state(job, "GONE", timeout=120)
        FIGURES.append(f"  a lost node's job ended after           {time.monotonic() - began:.0f} s (SlurmdTimeout = 15 s)")
        # The server itself still runs on the lost node (its slurmd is gone, not the node); the
        # gate stops connecting to it at its next look at the cluster (every 3 s): an API call
        # then hears that no server runs.
        wait_for(lambda: browser.request("GET", f"/user/{name}/api/status", headers={"Accept": "application/json"})[0] == 503,
                 timeout=15, interval=0.2)
        result = visit(browser, path=f"/user/{name}/lab")
        assert_in_lab(result, name)
        assert len(jobs_of(name)) == 1, what_happened(name) + result.trail()
        [(second, _, _, second_node)] = jobs_of(name)
        assert second != job and second_node != node
    finally:
        # A partial cluster: `up` stops the rest (with what still runs on the lost node) and starts it again.
        slurm_site.up()
    wait_for(lambda: set(slurm_site.node_states().values()) == {"idle"}, timeout=60)


RESEARCH_PROFILES = """
[[profiles]]
name = "course"
default = true

[[profiles]]
name = "research"
title = "Research"
groups = ["research"]
[profiles.slurm]
partition = "research"
cpus = 2
memory = "512M"
time_limit = "20"
"""


def running_servers():
    """hydra_running_servers by profile."""
    return site_metric("hydra_running_servers", "profile")


def test_a_slurm_profile_runs_its_job_in_its_partition_with_its_cpus_memory_and_time_limit(person, slurm_site):
    """Issue 24: a profile's `slurm` table over the site's [slurm]: mary (group research) gets her
    job in the partition `research` with 2 CPUs, 512 MiB and 20 minutes, as `scontrol show job`
    says; kathleen, outside the group, cannot have it, neither over ssh nor through the site."""
    group_with_members("research", "mary")
    install_config(text=config_text(**SLURM) + RESEARCH_PROFILES)
    site_reads_config()
    try:
        mary, kathleen = person("mary"), person("kathleen")
        result, report = start(mary, "--profile", "research")
        assert result.returncode == STARTED, result.stderr
        assert report["profile"] == "research" and report["node"] == SlurmCluster.NODES[-1]
        job = sh("scontrol", "show", "job", report["job"]).stdout
        for field in ("Partition=research", "NumCPUs=2", "TimeLimit=00:20:00", "MinMemoryNode=512M"):
            assert field in job, f"{field} not in: {job}"
        assert json.loads(as_user(mary, LAUNCH, "status", "--json").stdout)["profile"] == "research"
        # The default profile of the same site: the site's own [slurm] (partition hydra, 1 CPU).
        result, report = start(kathleen)
        assert result.returncode == STARTED and report["profile"] == "course", result.stderr
        assert "Partition=hydra" in sh("scontrol", "show", "job", report["job"]).stdout
        # The metrics count both jobs under their profiles (the gate looks at the cluster every 3 s;
        # servers other tests left running here count as the default, course).
        wait_for(lambda: running_servers().get("research") == 1 and running_servers().get("course", 0) >= 1, timeout=20)
        before = jobs_of(kathleen)
        result, _ = start(kathleen, "--profile", "research")
        assert result.returncode == REFUSED and jobs_of(kathleen) == before
        browser = browser_for(kathleen)
        _, _, page = browser.request("GET", "/hydra/profile")
        token = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
        status, _, _ = browser.request("POST", "/hydra/profile", form={"profile": "research", "_xsrf": token})
        assert status == 403 and jobs_of(kathleen) == before
    finally:
        slurm_config()
        site_reads_config()
        sh("groupdel", "research", check=False)


def test_squeue_is_empty_after_the_tests(slurm_site):
    """Last in this file: every job the tests started has ended (the person fixture stops them)."""
    wait_for(lambda: sh("squeue", "-h").stdout.strip() == "", timeout=30)
