"""Issue 15, slice 3: the throwaway Slurm cluster the Slurm backend's tests run against
(scripts/slurm-cluster; the `slurm_cluster` fixture), checked on its own: both nodes idle in the
partition, a person's job on the node asked for (its hostname, its own /tmp and /run, its
output in the person's home), a job's TCP server reached from the web host at the node's
address, scancel, and `down` leaving nothing behind.

Account: jobrunner (a local account of this file's own). Up and down times go to
figures/slurm.txt (scripts/test prints it).
"""
import os
import pathlib
import socket

import pytest

from conftest import SlurmCluster, local_account, sh, wait_for
from load_support import write_figures

USER = "jobrunner"
FIGURES = []
PORT = 8765


@pytest.fixture(scope="module", autouse=True)
def slurm_figures(request):
    yield
    if FIGURES:
        write_figures("slurm.txt", ["slurm test cluster (issue 15): scripts/slurm-cluster"] + FIGURES, request)


@pytest.fixture(scope="module")
def person(slurm_cluster):
    FIGURES.append(f"  up (first, in the fixture)  {slurm_cluster.up_seconds:.2f} s")
    return local_account(USER, 25100)


def alive(pid, name):
    """PID runs `name` and is no zombie (a PID reused by something else does not count)."""
    try:
        comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return comm == name and state != "Z"


def veths():
    return [line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").stdout.splitlines()
            if line.split(":")[1].strip().startswith("hs-")]


def test_the_script_refuses_to_run_outside_the_sandbox():
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_SANDBOX"}
    result = sh(SlurmCluster.SCRIPT, "up", env=env, check=False)
    assert result.returncode == 2 and "scripts/sandbox" in result.stderr


def test_both_nodes_are_idle_in_the_partition(slurm_cluster):
    assert slurm_cluster.node_states() == {"node1": "idle", "node2": "idle"}
    assert slurm_cluster.addresses() == {"node1": "169.254.1.2", "node2": "169.254.2.2"}
    for name, address in slurm_cluster.addresses().items():
        node = slurm_cluster.node(name)
        assert node["NodeAddr"] == address and node["NodeHostName"] == name
        # node2 also makes up the partition "research", for the profiles' tests.
        assert node["CPUTot"] == "16" and node["Partitions"] == {"node1": "hydra", "node2": "hydra,research"}[name]
    # "hydra" is the default partition, so a plain sbatch lands there.
    assert sh("sinfo", "-h", "-o", "%P").stdout.split() == ["hydra*", "research"]
    # `up` again finds it up and starts nothing new.
    pids = slurm_cluster.pids()
    result = sh(SlurmCluster.SCRIPT, "up")
    assert "already up" in result.stderr and slurm_cluster.pids() == pids


@pytest.mark.parametrize("node", ["node2", "node1"])
def test_a_persons_job_runs_on_the_node_asked_for(slurm_cluster, person, node):
    # Something the web host has in /tmp and /run that a node must not see.
    marker = pathlib.Path(f"/tmp/hydra-test-web-host-{node}")
    marker.write_text("web host\n")
    pathlib.Path("/run/hydra-test-web-host").mkdir(exist_ok=True)
    script = ("hostname; id -un; "
              f"test -e {marker} && echo shared-tmp || echo own-tmp; "
              "test -e /run/hydra-test-web-host && echo shared-run || echo own-run; "
              "test -S /run/munge/munge.socket.2 && echo munge || echo no-munge")
    job_id = slurm_cluster.submit(USER, "-w", node, f"--chdir={person}", f"--output={person}/hostname-%j.out",
                                  "--job-name=hostname", "--wrap", script)
    slurm_cluster.wait_for_state(job_id, "GONE", timeout=60)
    out = person / f"hostname-{job_id}.out"
    assert out.read_text().split() == [node, USER, "own-tmp", "own-run", "munge"], out.read_text()
    assert out.stat().st_uid == 25100


def test_a_jobs_tcp_server_is_reached_at_the_nodes_address_until_scancel(slurm_cluster, person):
    # The job's server answers each connection with the node's hostname.
    server = ("import socket; s = socket.create_server(('0.0.0.0', %d)); name = socket.gethostname().encode()\n"
              "while True:\n    c, _ = s.accept(); c.sendall(name + b'\\n'); c.close()\n" % PORT)
    (person / "serve.py").write_text(server)
    job_id = slurm_cluster.submit(USER, "-w", "node2", f"--chdir={person}", f"--output={person}/serve-%j.out",
                                  "--job-name=serve", "--wrap", "exec /usr/bin/python3 serve.py")
    job = slurm_cluster.wait_for_state(job_id, "RUNNING")
    assert job["nodes"] == "node2"
    address = slurm_cluster.node(job["nodes"])["NodeAddr"]
    assert address == slurm_cluster.addresses()["node2"]

    def answer():
        try:
            with socket.create_connection((address, PORT), timeout=2) as connection:
                return connection.makefile().readline().strip()
        except OSError:
            return None
    wait_for(lambda: answer() is not None, timeout=20)  # RUNNING comes before the server listens
    assert answer() == "node2"
    # Not on the web host itself, nor on the other node: the node's own network.
    assert sh("curl", "-s", "--max-time", "2", f"http://127.0.0.1:{PORT}/", check=False).returncode != 0

    assert sh("scancel", job_id).returncode == 0
    slurm_cluster.wait_for_state(job_id, "GONE", timeout=30)
    wait_for(lambda: answer() is None, timeout=15)
    wait_for(lambda: slurm_cluster.queue() == "", timeout=20)
    assert sh("squeue", "-h").stdout == ""


def test_down_stops_what_up_started_and_up_starts_it_again(slurm_cluster, person):
    pids = slurm_cluster.pids()
    assert all(alive(pid, SlurmCluster.DAEMONS[name]) for name, pid in pids.items()), pids
    assert sorted(veths()) == ["hs-node1", "hs-node2"]
    # A job left running: down ends it too.
    job_id = slurm_cluster.submit(USER, "-w", "node1", f"--chdir={person}", f"--output={person}/left-%j.out",
                                  "--wrap", "exec sleep 600")
    slurm_cluster.wait_for_state(job_id, "RUNNING")
    wait_for(lambda: sh("pgrep", "-u", USER, "-x", "sleep", check=False).returncode == 0)  # RUNNING comes first
    sleeper = int(sh("pgrep", "-u", USER, "-x", "sleep").stdout.split()[0])

    seconds = slurm_cluster.down()
    FIGURES.append(f"  down (one job running)      {seconds:.2f} s")
    left = {name: pid for name, pid in pids.items() if alive(pid, SlurmCluster.DAEMONS[name])}
    assert left == {}
    assert not alive(sleeper, "sleep")
    # Nor what those started (slurmctld's slurmscriptd, slurmd's slurmstepd): the sandbox runs no other.
    for name in ("munged", "slurmctld", "slurmscriptd", "slurmd", "slurmstepd"):
        assert sh("pgrep", "-x", name, check=False).stdout == "", name
    assert veths() == []
    assert not list(pathlib.Path("/run/netns").glob("hydra-node*"))
    assert not SlurmCluster.STATE.exists()
    assert "169.254.0.1" not in sh("ip", "-o", "addr", "show", "dev", "lo").stdout
    result = sh(SlurmCluster.SCRIPT, "down")   # down when not up: nothing to do
    assert "not up" in result.stderr

    # Up again, for the tests after this one (the fixture is the session's).
    seconds = slurm_cluster.up()
    FIGURES.append(f"  up (again, after down)      {seconds:.2f} s")
    assert slurm_cluster.node_states() == {"node1": "idle", "node2": "idle"}
    assert sh("squeue", "-h").stdout == ""
