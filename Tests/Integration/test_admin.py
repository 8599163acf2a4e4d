"""Issue 17: what an admin sees. /hydra/admin (every running server, a Stop button behind an
XSRF field, the course mirrors, the recent incidents) and /hydra/metrics (Prometheus text,
parsed here by prometheus_client's own parser), on the sandbox site: Apache with LDAP Basic
auth, mod_fcgid, hydra-cgi, hydra-gate, sudo with the project's sudoers file, real Jupyter
servers, and a real headless Chromium for the admin's browser.

People: carol (the admin), alice and bob (students), meter00-09 (a herd of new people).
"""
import concurrent.futures
import json
import re
import time
import urllib.parse

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD, PREFIX, Browser, as_web_server, sh
from e2e_site import browsers, server_pid, site_with_admins  # noqa: F401 (browsers: a fixture)
from hydra_site import wait_for
from load_support import ErrorLog, api, browser_for, visit

STUDENTS = ["alice", "bob"]
HERD = [f"meter{i:02d}" for i in range(10)]


@pytest.fixture(scope="module", autouse=True)
def admin_site(site):
    """The site with carol as its admin."""
    with site_with_admins(["carol"], "admin-logs", STUDENTS + HERD):
        yield


def first_visit(name):
    """A person's visit to the site's root: the auto-login page once their server runs."""
    status, _, page = Browser(name).get("/")
    assert status == 200 and 'id="login"' in page, f"{name}'s visit: {status} {page[:300]}"


def visit_until_lab(name):
    """A browser at the site's root, reloading the "starting" page (Refresh: 2) as it says,
    until the auto-login page; returns how many "starting" pages it got."""
    browser, starting = Browser(name), 0
    for _ in range(60):
        status, headers, page = browser.get("/")
        assert status == 200, f"{name}'s visit: {status} {page[:300]}"
        if 'id="login"' in page:
            return starting
        assert headers.get("Refresh") == "2", page[:500]
        starting += 1
        time.sleep(2)
    raise AssertionError(f"{name} never reached the auto-login page")


def health():
    return sh("curl", "-sf", "http://localhost/hydra/health").stdout


def metrics_text(browser=None):
    status, headers, text = (browser or Browser()).get("/hydra/metrics")
    assert status == 200, f"/hydra/metrics: {status} {text[:300]}"
    assert headers.get("Content-Type", "").startswith("text/plain; version=0.0.4")
    return text


def samples(text):
    """{(name, frozenset(labels)): value} from a real Prometheus text parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


def admin_browser(browsers):
    """carol's Chromium, signed in (the Basic-auth prompt answered once, as a person would)."""
    browser = browsers("carol")
    browser.get(f"http://carol:{urllib.parse.quote(PASSWORD, safe='')}@localhost/hydra/whoami")
    browser.wait(lambda b: "Signed in as carol" in b.text(), "the site to recognise carol")
    return browser


def test_admin_page_lists_servers_and_stops_one_in_a_browser(browsers):
    for name in STUDENTS:
        first_visit(name)
    bob_before = server_pid("bob")
    assert server_pid("alice") and bob_before
    # alice opens a notebook: a kernel, which jupyter_client starts in a session of its own.
    alice = browser_for("alice")
    assert visit(alice).in_lab("alice")
    code, body = api(alice, "alice", "POST", "kernels", {"name": "python3"})
    assert code == 201, f"starting a kernel: {code} {body[:300]}"

    carol = admin_browser(browsers)
    carol.get("/hydra/admin")
    carol.wait(lambda b: "Running servers" in b.text(), "the admin page")
    rows = {row.get_attribute("data-user"): row.text for row in carol.driver.find_elements("css selector", "#servers tr[data-user]")}
    assert {"alice", "bob"} <= set(rows), f"the servers carol sees: {rows}"
    assert re.search(r"\d+ MiB", rows["bob"]) and "tutorials" in carol.text(), carol.text()[:2000]

    def cells(user):
        return [cell.text for cell in carol.driver.find_elements("css selector", f'#servers tr[data-user="{user}"] td')]
    # Person, since, memory, CPU time, kernels, last activity: her kernel is counted, and its memory.
    def kernel_counted(browser):
        if cells("alice")[4:5] == ["1"]:
            return True
        browser.get("/hydra/admin")  # the kernel may still be starting: the admin reloads
        return False
    carol.wait(kernel_counted, "alice's kernel on the admin page", timeout=60)
    alice_memory, bob_memory = (int(cells(user)[2].split()[0]) for user in ("alice", "bob"))
    assert alice_memory > bob_memory + 20, f"alice's server with a kernel: {alice_memory} MiB, bob's without: {bob_memory} MiB"
    assert "ago" in cells("alice")[5], cells("alice")  # the gate saw her traffic
    carol.shot("admin-page")

    carol.driver.find_element("css selector", '#servers tr[data-user="bob"] button').click()
    carol.wait(lambda b: "The server of bob was stopped" in b.text(), "the page to say bob's server stopped")
    wait_for(lambda: server_pid("bob") is None, timeout=30)
    assert server_pid("alice"), "stopping bob's server stopped alice's too"
    rows = [row.get_attribute("data-user") for row in carol.driver.find_elements("css selector", "#servers tr[data-user]")]
    assert "bob" not in rows and "alice" in rows, rows

    # bob's next visit starts a new server.
    first_visit("bob")
    bob_after = server_pid("bob")
    assert bob_after and bob_after != bob_before


def test_admin_page_is_for_admins_only():
    assert Browser().get("/hydra/admin")[0] == 401                    # anonymous: Apache asks for sign-in
    status, _, page = Browser("alice").get("/hydra/admin")
    assert status == 403 and "administrators" in page                  # signed in, not an admin
    assert Browser("carol").get("/hydra/admin")[0] == 200
    # /hydra/metrics from an address apache/hydra.conf lets scrape (this one) never asks for a
    # sign-in; signed in elsewhere, the front lets admins only. As Apache would run it then:
    assert front_as_signed_in("alice", "/hydra/metrics").startswith("Status: 403")
    answer = front_as_signed_in("carol", "/hydra/metrics")
    assert answer.startswith("Status: 200") and "hydra_running_servers" in answer, answer[:500]


def front_as_signed_in(user, path):
    """hydra-cgi as Apache runs it (CGI, as the web server's account) for a signed-in `user`."""
    return as_web_server("env", f"REMOTE_USER={user}", f"REQUEST_URI={path}", "REQUEST_METHOD=GET",
                         PREFIX / "hydra-cgi").stdout


FORM_TOKEN = r'name="_xsrf" value="([0-9]+\.[0-9a-f]{64})"'


def test_stop_form_without_a_token_minted_for_the_admin_is_refused_forged_cross_site_post():
    first_visit("alice")
    running = server_pid("alice")
    carol = Browser("carol")
    status, headers, page = carol.get("/hydra/admin")
    token = re.search(FORM_TOKEN, page).group(1)
    assert "Set-Cookie" not in headers  # the token stands alone: no cookie a page elsewhere could toss in
    # Without the field (what another site's form could make carol's browser send), with a
    # made-up one, and with the old cookie/field pair that any page of this host could set: 403.
    assert carol.post("/hydra/admin/stop", {"user": "alice"})[0] == 403
    assert carol.post("/hydra/admin/stop", {"user": "alice", "_xsrf": f"{int(time.time())}.{'0' * 64}"})[0] == 403
    tossed = Browser("carol")
    tossed.cookies["hydra-admin-xsrf"] = "a" * 32
    assert tossed.post("/hydra/admin/stop", {"user": "alice", "_xsrf": "a" * 32})[0] == 403
    # Not an admin, with carol's own token: 403 too.
    assert Browser("bob").post("/hydra/admin/stop", {"user": "alice", "_xsrf": token})[0] == 403
    # carol's valid token, posted from another origin (another port of this host): 403.
    assert carol.post("/hydra/admin/stop", {"user": "alice", "_xsrf": token}, headers={"Origin": "http://localhost:8000"})[0] == 403
    assert server_pid("alice") == running


def test_stop_form_refuses_a_system_account_hostile_target():
    carol = Browser("carol")
    page = carol.get("/hydra/admin")[2]
    token = re.search(FORM_TOKEN, page).group(1)
    for target in ["root", "www-data", "../alice", "alice\nroot"]:
        status, _, _ = carol.post("/hydra/admin/stop", {"user": target, "_xsrf": token})
        assert status in (400, 403), f"stop {target!r}: {status}"


def test_metrics_after_a_herd_of_ten_match_the_front_log():
    before = samples(metrics_text())
    log = ErrorLog()
    with concurrent.futures.ThreadPoolExecutor(len(HERD)) as pool:
        starting_pages = sum(pool.map(visit_until_lab, HERD))
    herd = "|".join(HERD)
    # Each visit is counted after its answer: wait until all are.
    wait_for(lambda: sum(value(samples(metrics_text()), "hydra_visits_total", outcome=outcome)
                         - value(before, "hydra_visits_total", outcome=outcome) for outcome in ("autologin", "starting"))
             >= len(HERD) + starting_pages, timeout=30)
    after = samples(metrics_text())

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    visits = log.lines(rf"user=({herd})\b.*visit: ")
    started = log.lines(rf"user=({herd})\b.*visit: started server")
    deferred = log.lines(rf"user=({herd})\b.*start deferred")
    assert len(visits) == len(started) == len(HERD), "\n".join(visits)
    assert grew("hydra_visits_total", outcome="autologin") == len(visits)
    assert grew("hydra_visits_total", outcome="starting") == starting_pages
    assert grew("hydra_starts_deferred_total") == len(deferred)
    assert grew("hydra_starts_total", outcome="started", profile="default") == len(started)
    assert grew("hydra_start_duration_seconds_count") == len(started)
    assert grew("hydra_accounts_created_total") == len(HERD)
    assert grew("hydra_helper_exits_total", helper="addldapuser", exit_status="0") == len(HERD)
    assert grew("hydra_course_syncs_total", course="tutorials", result="ok") == len(HERD)
    assert value(after, "hydra_running_servers", profile="default") == json.loads(health())["server_sockets"]
