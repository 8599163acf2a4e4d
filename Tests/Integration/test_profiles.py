"""Profiles (issue 24) through the real Apache, sudo and Jupyter: rosalind (group research) chooses
between `course` and `research`; lise may use `course` only. The rules themselves are tables in
Swift (ServerLifecycleTests' profile rows, FrontProfileTests); here they are shown end to end."""
import pathlib
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PREFIX, as_web_server, sh
from e2e_site import reload_apache, stop_server
from hydra_site import config_text, install_config, restart_gate
from load_support import browser_for, server_status, visit
from test_limits import process_limits

PROFILES = """
[[profiles]]
name = "course"
title = "Course"
description = "For the course's notebooks: 1 GiB"
default = true
[profiles.limits]
memory_max = "1G"

[[profiles]]
name = "research"
title = "Research"
description = "For the research group: 4 GiB"
groups = ["research"]
[profiles.limits]
memory_max = "4G"
"""
PEOPLE = ["rosalind", "lise"]


@pytest.fixture(scope="module", autouse=True)
def profile_site(site):
    """The site with two profiles; rosalind in the group research."""
    sh("groupadd", "-f", "research")
    # Before her account exists (addldapuser makes it at her first visit): the member list by hand.
    group = pathlib.Path("/etc/group")
    group.write_text(re.sub(r"^(research:[^:]*:\d+:).*$", r"\1rosalind", group.read_text(), flags=re.M))
    install_config(text=config_text(**{"admin.users": '["carol"]'}) + PROFILES)
    reload_apache()
    restart_gate()  # the metrics' profile labels are the gate's to know
    try:
        yield
    finally:
        for name in PEOPLE:
            stop_server(name)
        install_config()
        reload_apache()
        restart_gate()
        sh("groupdel", "research", check=False)


def form_token(page):
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def choose(browser, profile, token):
    """Post the choice page's form; then the visit to / that follows it into the lab."""
    status, _, page = browser.request("POST", "/hydra/profile", form={"profile": profile, "_xsrf": token})
    return status, page


def memory_limit(name):
    """The running server's RLIMIT_DATA (servers run detached in the sandbox: no systemd)."""
    return process_limits(server_status(name)["pid"])["Max data size"]


def test_a_person_with_two_profiles_chooses_gets_its_limits_goes_straight_back_and_can_switch(site):
    rosalind = browser_for("rosalind")
    status, _, page = rosalind.request("GET", "/")
    assert status == 200 and 'name="profile"' in page, page[:500]
    assert 'value="course" checked' in page and 'value="research"' in page and "For the research group" in page
    status, page = choose(rosalind, "research", form_token(page))
    assert status == 200 and 'id="login"' in page, page[:500]
    assert visit(rosalind).in_lab("rosalind")
    status = server_status("rosalind")
    assert status["profile"] == "research" and status["running"]
    assert memory_limit("rosalind") == str(4 << 30)
    first_pid = status["pid"]
    # The next visit: no choice, straight to the lab, the same server.
    rosalind.cookies.pop("hydra-recent", None)
    again = visit(rosalind)
    assert again.in_lab("rosalind") and not any("Choose" in step.title for step in again.steps), again.trail()
    assert server_status("rosalind")["pid"] == first_pid
    # /hydra/profile: says the server restarts; confirming starts one of the other profile.
    status, _, page = rosalind.request("GET", "/hydra/profile")
    assert status == 200 and "restarted" in page and 'value="research" checked' in page
    status, page = choose(rosalind, "course", form_token(page))
    assert status == 200 and 'id="login"' in page, page[:500]
    after = server_status("rosalind")
    assert after["profile"] == "course" and after["pid"] != first_pid
    assert memory_limit("rosalind") == str(1 << 30)
    # The admin sees each server's profile; the metrics count starts and running servers by profile.
    carol = browser_for("carol")
    status, _, page = carol.request("GET", "/hydra/admin")
    assert status == 200 and re.search(r'data-user="rosalind"><td>rosalind</td><td class="profile">course</td>', page), page[:2000]
    status, _, text = carol.request("GET", "/hydra/metrics")
    found = {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert found[("hydra_running_servers", frozenset({("profile", "course")}))] >= 1
    assert found[("hydra_running_servers", frozenset({("profile", "research")}))] == 0
    assert found[("hydra_starts_total", frozenset({("outcome", "started"), ("profile", "research")}))] >= 1


def test_a_person_with_one_profile_never_sees_a_choice_and_cannot_post_another(site):
    lise = browser_for("lise")
    first = visit(lise)
    assert first.in_lab("lise") and not any("Choose" in step.title for step in first.steps), first.trail()
    before = server_status("lise")
    assert before["profile"] == "course" and memory_limit("lise") == str(1 << 30)
    _, _, page = lise.request("GET", "/hydra/profile")
    token = form_token(page)
    # Her own valid form, for a profile her groups do not allow; another person's form replayed;
    # a form without a token or from another site; hostile values.
    rosalind_page = browser_for("rosalind").request("GET", "/hydra/profile")[2]
    attempts = [({"profile": "research", "_xsrf": token}, {}), ({"profile": "research", "_xsrf": form_token(rosalind_page)}, {}),
                ({"profile": "research"}, {}), ({"profile": "course", "_xsrf": token}, {"Origin": "http://evil.example"})]
    attempts += [({"profile": value, "_xsrf": token}, {}) for value in ("", "../", "a" * 200, "nonexistent", "Course")]
    for form, headers in attempts:
        status, _, _ = lise.request("POST", "/hydra/profile", form=form, headers=headers)
        assert status in (400, 403), (form, headers, status)
    after = server_status("lise")
    assert after["pid"] == before["pid"] and after["profile"] == "course"
    # Over ssh (as herself), ipynb-launch refuses it too, and leaves her server alone.
    result = sh("runuser", "-u", "lise", "--", PREFIX / "ipynb-launch", "start", "--json", "--profile", "research", check=False)
    assert result.returncode == 77 and server_status("lise")["pid"] == before["pid"]


def test_the_web_server_cannot_widen_a_profile_through_sudo(site):
    """Threat: the web server's account asking ipynb-launch for more than a name: sudoers' regular
    expression allows only `--profile NAME` at the end of the front's own command line."""
    for extra in (["--profile", "course", "--lock-timeout", "3600"], ["--profile", "course;id"], ["--profile", "-h"]):
        result = as_web_server("sudo", "-n", "-u", "lise", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0", *extra)
        assert result.returncode != 0 and "password is required" in result.stderr, extra
