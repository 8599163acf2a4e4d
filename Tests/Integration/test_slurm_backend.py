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
import signal
import time

import pytest

from conftest import PREFIX, REPO, SlurmCluster, as_user, install_config, sh, wait_for
from load_support import write_figures

LAUNCH = PREFIX / "ipynb-launch"
STARTED, REUSED, TEMPORARY, REFUSED, CONFIGURATION = 0, 1, 75, 77, 78
PORTS = (21000, 21999)
SLURM = {
    "server.backend": '"slurm"',
    "server.start_timeout_seconds": "60",
    "slurm.partition": '"hydra"',
    "slurm.time_limit": '"30"',
    "slurm.port_range": f"[{PORTS[0]}, {PORTS[1]}]",
}
KERNEL_ROUNDTRIP = REPO / "Tests/Integration/kernel_roundtrip.py"
JUPYTER_PYTHON = "/opt/hydra/jupyter/bin/python"
FIGURES = []


@pytest.fixture(scope="module", autouse=True)
def backend_figures(request):
    yield
    if FIGURES:
        write_figures("slurm-backend.txt", ["ipynb-launch start with backend = \"slurm\" (issue 15), its own timing (--json seconds)"]
                      + FIGURES, request)


def slurm_config(**overrides):
    install_config(**{**SLURM, **overrides})


@pytest.fixture(scope="module")
def slurm_site(site, slurm_cluster):
    slurm_config()
    yield slurm_cluster
    install_config()


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


def jobs_of(*names):
    """squeue's live jobs of these accounts: [(id, user, state, node)]."""
    out = sh("squeue", "-h", "-o", "%i %u %T %N").stdout
    return [tuple(line.split(" ")) for line in out.splitlines() if line.split(" ")[1] in names]


def start(name, *extra):
    result = as_user(name, LAUNCH, "start", "--json", *extra, timeout=180)
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result, report


def api_status(address, port, name, token=None, as_account=None):
    """GET /user/NAME/api/status at the node's address, as the web host (root) or another account."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-H", "Host: localhost"]
    if token:
        argv += ["-H", f"Authorization: token {token}"]
    argv.append(f"http://{address}:{port}/user/{name}/api/status")
    result = as_user(as_account, *argv) if as_account else sh(*argv, check=False)
    return result.stdout.strip()


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
        kernel = sh(JUPYTER_PYTHON, KERNEL_ROUNDTRIP, f"http://{report['address']}:{report['port']}", name,
                    "--token", report["token"], "--host", "localhost", "--code", code, "--expect", expected, check=False)
        assert kernel.returncode == 0, kernel.stdout + kernel.stderr
    # The token never reaches a command line or the job's environment; the file it came in is gone.
    job = sh("scontrol", "show", "job", report["job"]).stdout
    assert report["token"] not in job
    home = pathlib.Path(f"/home/{name}/.hydra/slurm")
    assert not (home / "token").exists()
    assert (home / "endpoint").read_text().split() == [report["job"], report["node"], str(report["port"])]

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
                            "--wrap", f"curl -s -o /dev/null -w '%{{http_code}} ' --max-time 5 -H 'Host: localhost' "
                                      f"http://{report['address']}:{report['port']}/user/{name}/api/contents; "
                                      f"curl -s -o /dev/null -w '%{{http_code}} ' --max-time 5 -H 'Host: localhost' "
                                      f"http://127.0.0.1:{report['port']}/user/{name}/api/contents; hostname")
    slurm_site.wait_for_state(job, "GONE", timeout=60)
    out = pathlib.Path(f"/home/{other}/probe-{job}.out").read_text().split()
    assert out == ["403", "403", report["node"]], out


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
    name = person("kathleen")
    _, first = start(name)
    sh("scancel", first["job"])
    slurm_site.wait_for_state(first["job"], "GONE", timeout=30)
    result, second = start(name)
    assert result.returncode == STARTED, result.stderr
    assert second["job"] != first["job"] and second["token"] != first["token"]
    assert api_status(second["address"], second["port"], name, second["token"]) == "200"
    assert [job[0] for job in jobs_of(name)] == [second["job"]]


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
    name = person("mary")
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: start(name), range(8)))
    FIGURES.append(f"  8 concurrent starts of one person      {time.monotonic() - began:.2f} s (all answered)")
    codes = sorted(result.returncode for result, _ in results)
    assert codes == [STARTED] + [REUSED] * 7, [r.stderr for r, _ in results]
    assert len({report["job"] for _, report in results}) == 1
    assert len(jobs_of(name)) == 1


def test_a_job_waiting_in_a_full_partition_keeps_its_place_and_then_serves(person, slurm_site):
    name, filler = person("kathleen"), person("ida")
    fillers = [slurm_site.submit(filler, "-w", node, "--cpus-per-task=2", f"--chdir=/home/{filler}",
                                 "--output=/dev/null", "--wrap", "exec sleep 300") for node in SlurmCluster.NODES]
    for job in fillers:
        slurm_site.wait_for_state(job, "RUNNING")
    slurm_config(**{"server.start_timeout_seconds": "3"})
    try:
        result, _ = start(name)
        assert result.returncode == TEMPORARY, result.stderr
        assert "is still PENDING (reason: " in result.stderr and "keeps its place" in result.stderr
        [(waiting, _, state, _)] = jobs_of(name)
        assert state == "PENDING"
        # A second visit waits for the same job: no second job, no lost place.
        result, _ = start(name)
        assert result.returncode == TEMPORARY and [job[0] for job in jobs_of(name)] == [waiting]
        status = as_user(name, LAUNCH, "status")
        assert f"waiting: job {waiting} is PENDING (" in status.stdout + status.stderr
        wait_for(lambda: slurm_site.job(waiting)["reason"] == "Resources", timeout=30)
    finally:
        slurm_config()
    sh("scancel", *fillers)
    result, report = start(name)
    assert result.returncode == STARTED, result.stderr
    assert report["job"] == waiting
    assert api_status(report["address"], report["port"], name, report["token"]) == "200"


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


def test_squeue_is_empty_after_the_tests(slurm_site):
    """Last in this file: every job the tests started has ended (the person fixture stops them)."""
    wait_for(lambda: sh("squeue", "-h").stdout.strip() == "", timeout=30)
