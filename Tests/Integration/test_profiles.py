"""Profiles (issue 24) through the real Apache, sudo and Jupyter: rosalind (group research) chooses
between `course` and `research`; lise may use `course` only. The rules themselves are tables in
Swift (ServerLifecycleTests' profile rows, FrontProfileTests); here they are shown end to end,
through a Python HTTP client and through a real headless Chromium (e2e_site's `browsers`).
Both of rosalind's tests begin from a person who has never chosen (`never_chosen`), so they hold
whichever runs first, and alone."""
import pathlib
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver.common.by import By

from conftest import PREFIX, as_web_server, sh
from e2e_site import browsers, reload_apache, stop_server  # noqa: F401 (browsers: a fixture)
from hydra_site import config_text, group_with_members, install_config, restart_gate
from load_support import browser_for, server_status, visit
from test_browser import answer_password_prompt
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
# The front remembers each person's last choice here (ProfileChoice.swift).
CHOICES = pathlib.Path("/run/hydra/.front/profiles")


@pytest.fixture(scope="module", autouse=True)
def profile_site(site):
    """The site with two profiles; rosalind in the group research."""
    group_with_members("research", "rosalind")
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


def never_chosen(name):
    """The person as on a first visit: no server, and no choice the front remembers (a recent
    choice would carry a start on without asking; an old one would be the page's preselection)."""
    stop_server(name)
    (CHOICES / name).unlink(missing_ok=True)
    assert not server_status(name).get("running"), server_status(name)


def memory_limit(name):
    """The running server's RLIMIT_DATA (servers run detached in the sandbox: no systemd)."""
    return process_limits(server_status(name)["pid"])["Max data size"]


def test_a_person_with_two_profiles_chooses_gets_its_limits_goes_straight_back_and_can_switch(site):
    never_chosen("rosalind")
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


CHOICE_TITLE = "Choose your notebook server"
SWITCH_TITLE = "Change your notebook server's profile"


def profile_radios(browser):
    """The page's profile inputs: value -> (the radio element, its label's visible text)."""
    return {radio.get_attribute("value"): (radio, radio.find_element(By.XPATH, "./ancestor::label").text.strip())
            for radio in browser.find('form[action="/hydra/profile"] input[type="radio"][name="profile"]')}


def choose_in_page(browser, profile, button_text):
    """What a person does on the page: clicks the profile's label, then the form's button."""
    radios = profile_radios(browser)
    radio, _ = radios[profile]
    radio.find_element(By.XPATH, "./ancestor::label").click()
    assert radio.is_selected() and not any(other.is_selected() for name, (other, _) in radios.items() if name != profile)
    button = browser.find('form[action="/hydra/profile"] button[type="submit"]')[0]
    assert button.text.strip() == button_text
    button.click()


def history(browser):
    """The tab's session history (DevTools): every page it showed, redirects left out."""
    return browser.driver.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]


def test_in_chromium_a_person_picks_research_on_the_choice_page_gets_a_4g_lab_comes_back_without_a_choice_and_switches_to_course(browsers, site):
    never_chosen("rosalind")
    browser = browsers("rosalind-profiles")
    answer_password_prompt(browser, "rosalind")
    # 1. The first visit: the choice page, a plain form (no scripts), the default preselected.
    browser.get("http://localhost/")
    browser.wait(lambda b: b.driver.title == CHOICE_TITLE and profile_radios(b), "the choice page")
    assert browser.path == "/" and not browser.find("script")
    radios = profile_radios(browser)
    assert {name: label for name, (_, label) in radios.items()} == {"course": "Course", "research": "Research"}
    assert radios["course"][0].is_selected() and not radios["research"][0].is_selected()
    text = browser.text()
    assert "For the course's notebooks: 1 GiB" in text and "For the research group: 4 GiB" in text, text
    assert "restarted" not in text  # nothing runs yet: nothing to restart
    assert not server_status("rosalind").get("running")  # the page asks first; it starts nothing
    browser.shot("profile-choice")
    # 2. Research, then Start: her lab, on a server of that profile with its limits.
    choose_in_page(browser, "research", "Start")
    browser.wait_for_lab("rosalind")
    status = server_status("rosalind")
    assert status["running"] and status["profile"] == "research", status
    assert memory_limit("rosalind") == str(4 << 30)
    first_pid = status["pid"]
    # 3. The next visit, once Apache's hydra-recent shortcut has lapsed (the front decides):
    # straight to the lab, no page of the choice on the way, the same server.
    browser.driver.execute_cdp_cmd("Network.deleteCookies", {"name": "hydra-recent", "domain": "localhost"})
    seen = len(history(browser))
    browser.get("http://localhost/")
    browser.wait(lambda b: b.driver.title in (CHOICE_TITLE, SWITCH_TITLE) or b.path.startswith("/user/rosalind/lab"),
                 "the next visit to reach the lab or a choice")
    assert browser.driver.title not in (CHOICE_TITLE, SWITCH_TITLE), browser.text()[:300]
    browser.wait_for_lab("rosalind")
    shown = history(browser)[seen:]
    assert shown and not [e for e in shown if e["title"] in (CHOICE_TITLE, SWITCH_TITLE) or "/hydra/profile" in e["url"]], shown
    assert server_status("rosalind")["pid"] == first_pid
    # 4. /hydra/profile: the page says the server restarts and what is not saved is lost; Course,
    # then the button: a new server of that profile, and the browser back in the lab.
    browser.get("http://localhost/hydra/profile")
    browser.wait(lambda b: b.driver.title == SWITCH_TITLE and profile_radios(b), "the page to change the profile")
    text = browser.text()
    assert "will be restarted" in text and "save your open notebooks first" in text and "not saved is lost" in text, text
    radios = profile_radios(browser)
    assert set(radios) == {"course", "research"} and radios["research"][0].is_selected()  # the running one
    browser.shot("profile-switch")
    choose_in_page(browser, "course", "Restart with this profile")
    browser.wait_for_lab("rosalind")
    after = server_status("rosalind")
    assert after["running"] and after["profile"] == "course" and after["pid"] != first_pid, (after, first_pid)
    assert memory_limit("rosalind") == str(1 << 30)


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
