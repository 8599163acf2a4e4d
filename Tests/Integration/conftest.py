"""Fixtures for hydra's integration tests (the site itself is hydra_site.py)."""
import os

import pytest

if os.environ.get("HYDRA_SANDBOX") != "1":
    pytest.exit("the integration tests change accounts and sudoers: run them through scripts/test "
                "(or scripts/sandbox), never directly", returncode=2)

from hydra_site import *  # noqa: E402,F401,F403  (the tests import names from here)
from hydra_site import SlurmCluster, install_config, start_directory, start_site, stop_site  # noqa: E402


@pytest.fixture(scope="session")
def directory():
    d = start_directory()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def site(directory):
    start_site()
    yield
    stop_site()


@pytest.fixture(scope="session")
def slurm_cluster():
    """The sandbox's Slurm cluster (scripts/slurm-cluster), up for the rest of the session once a
    test asks for it; down at the end."""
    cluster = SlurmCluster()
    cluster.up_seconds = cluster.up()
    yield cluster
    cluster.down()


@pytest.fixture()
def config(site):
    """Lets a test install another configuration; the default one is restored afterwards."""
    yield install_config
    install_config()


