"""Issue 27: what a hostile signed-in person, or a local account of the site, can still reach.
Each test is a probe that worked before its fix: Apache's own status pages under the site, a
page of another port that makes an admin's browser stop someone's server, a person's own lock
that held one of the front's start slots, and the gate's log open to every local account.

On the sandbox site (real Apache, mod_fcgid, LDAP Basic auth, sudo with the project's sudoers,
real Jupyter servers) and a real headless Chromium for the admin's browser.

People: trent (the admin), eve (hostile, signed in and with a local account), victor (a person
whose server runs), stuck (holds her own lock), arrival00-19 (new people arriving meanwhile).
"""
import concurrent.futures
import glob
import json
import pathlib
import re
import subprocess
import time
import urllib.parse

import pytest

from conftest import PASSWORD, Browser, as_user, sh
from e2e_site import browsers, reload_apache, server_pid, site_with_admins, stop_process, stop_server, wait_for_port  # noqa: F401 (browsers: a fixture)
from hydra_site import wait_for
from load_support import percentile, write_figures

ADMIN = "trent"
PEOPLE = ["eve", "victor", "stuck"]
ARRIVALS = [f"arrival{i:02d}" for i in range(20)]
FORM_TOKEN = r'name="_xsrf" value="([0-9]+\.[0-9a-f]{64})"'
INCIDENTS = pathlib.Path("/run/hydra/.front/incidents.jsonl")


@pytest.fixture(scope="module", autouse=True)
def hostile_site(site):
    with site_with_admins([ADMIN], "hostile-logs", PEOPLE + ARRIVALS):
        yield


def visit_until_autologin(name, reload_seconds=None):
    """A browser at the site's root, reloading the starting page as its Refresh says, until the
    auto-login page; returns the seconds it took and the reasons the starting pages gave."""
    browser, started, reasons = Browser(name), time.monotonic(), []
    for _ in range(200):
        status, headers, page = browser.get("/")
        assert status == 200, f"{name}'s visit: {status} {page[:300]}"
        if 'id="login"' in page:
            return time.monotonic() - started, reasons
        assert "Refresh" in headers, page[:500]
        reasons.append(re.sub(r"\s+", " ", re.search(r"<p>(.*?)</p>", page, re.S).group(1)))
        time.sleep(reload_seconds or int(headers["Refresh"]))
    raise AssertionError(f"{name} never reached the auto-login page: {reasons[-3:]}")


# --- Apache's own pages under the site ---------------------------------------------------------

# What Debian's modules serve at a path of their own when enabled, and what a site's admin
# commonly adds (mod_proxy_balancer's manager has no <Location> of Debian's).
KNOWN_HANDLER_PATHS = ["/server-status", "/server-status?auto", "/server-info", "/ldap-status", "/balancer-manager",
                       "/cgi-bin/", "/icons/README", "/manual/", "/javascript/"]
EXTRA_MODULES = ["info", "proxy_balancer", "lbmethod_byrequests"]
BALANCER_CONF = pathlib.Path("/etc/apache2/conf-enabled/zz-hydra-test-balancer-manager.conf")


def handler_paths():
    """Every path the enabled modules and confs serve by themselves: a <Location> that sets a
    handler, and the start of every Alias and ScriptAlias (read from the files, so a module
    enabled later is covered too), with the well-known ones."""
    paths = set(KNOWN_HANDLER_PATHS)
    for name in glob.glob("/etc/apache2/mods-enabled/*.conf") + glob.glob("/etc/apache2/conf-enabled/*.conf"):
        text = pathlib.Path(name).read_text(errors="replace")
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for location, body in re.findall(r'<Location\s+"?([^">\s]+)"?\s*>(.*?)</Location>', text, re.S | re.I):
            if re.search(r"^\s*SetHandler\s", body, re.M | re.I):
                paths.add(location)
        for alias in re.findall(r'^\s*(?:Script)?Alias\s+"?(/[^"\s]*)"?\s', text, re.M | re.I):
            paths.add(alias)
    return sorted(paths)


@pytest.fixture()
def every_handler_module():
    """mod_status (Debian's default), mod_ldap (the site's sign-in), mod_info and mod_proxy_balancer
    with a manager page, as an admin might have them: enabled for this test, then as before."""
    sh("a2enmod", "-q", *EXTRA_MODULES)
    BALANCER_CONF.write_text('<Location "/balancer-manager">\n    SetHandler balancer-manager\n    Require local\n</Location>\n')
    reload_apache()
    yield
    BALANCER_CONF.unlink()
    sh("a2dismod", "-q", "-f", *EXTRA_MODULES)
    reload_apache()


def test_apache_status_and_info_pages_are_not_served_to_a_signed_in_person_or_anonymous(every_handler_module):
    paths = handler_paths()
    assert {"/server-status", "/server-info", "/ldap-status", "/balancer-manager"} <= set(paths), paths
    enabled = sh("apache2ctl", "-M").stdout
    assert all(module in enabled for module in ("status_module", "info_module", "ldap_module", "proxy_balancer_module")), enabled
    eve, answers = Browser("eve"), {}
    for path in paths:
        status, _, page = eve.get(path)
        answers[path] = status
        # Never the module's own page: no scoreboard, no configuration, no LDAP cache, no balancer.
        assert not re.search(r"Apache Server (Status|Information)|Server Version|LDAP Cache Information|Load Balancer Manager|"
                             r"Scoreboard|Index of /", page), f"{path} as eve: {status} {page[:400]}"
        assert Browser().get(path)[0] == 401, f"{path} without signing in"
    assert all(status in (403, 404) for status in answers.values()), answers
    # The admin gets no module page either: Apache's status is for a vhost of its own (README).
    assert Browser(ADMIN).get("/server-status")[0] in (403, 404)


# --- The admin's Stop, forged from another port or origin ---------------------------------------

FORGED_PAGE = """<!doctype html><title>free pizza</title>
<script>
// Cookies are not isolated by port: this one reaches http://localhost too.
document.cookie = "hydra-admin-xsrf=" + "a".repeat(32) + "; path=/";
document.cookie = "_xsrf=" + "a".repeat(32) + "; path=/";
</script>
<form id="f" method="post" action="http://localhost/hydra/admin/stop">
<input type="hidden" name="user" value="victor"><input type="hidden" name="_xsrf" value="TOKEN">
</form>
<script>document.getElementById("f").submit();</script>
"""


@pytest.fixture()
def eves_page():
    """eve's own web server (her account, her folder) on port 8000 of this host, serving a page
    that tosses cookies for localhost and auto-posts Stop for victor with `TOKEN` in the form."""
    assert 'id="login"' in Browser("eve").get("/")[2]   # her account, as after her first visit
    folder = pathlib.Path("/tmp/eve-page")
    sh("rm", "-rf", "--one-file-system", folder)
    folder.mkdir()
    sh("chown", "eve:eve", folder)
    server = subprocess.Popen(["setpriv", "--reuid=eve", "--regid=eve", "--init-groups", "--reset-env",
                               "/usr/bin/python3", "-m", "http.server", "--bind", "0.0.0.0", "--directory", str(folder), "8000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(server, 8000)

    def publish(name, token):
        as_user("eve", "/usr/bin/python3", "-c", f"import sys; open({str(folder / name)!r}, 'w').write(sys.argv[1])",
                FORGED_PAGE.replace("TOKEN", token))
    yield publish
    stop_process(server)
    sh("rm", "-rf", "--one-file-system", folder)


def refused_stops():
    return [json.loads(line) for line in INCIDENTS.read_text().splitlines() if "was refused" in line] if INCIDENTS.exists() else []


def test_a_page_of_another_port_or_origin_cannot_make_the_admins_browser_stop_a_server(browsers, eves_page):
    assert 'id="login"' in Browser("victor").get("/")[2]
    running = server_pid("victor")
    assert running
    trent = browsers(ADMIN)
    trent.get(f"http://{ADMIN}:{urllib.parse.quote(PASSWORD, safe='')}@localhost/hydra/whoami")
    trent.wait(lambda b: f"Signed in as {ADMIN}" in b.text(), "the site to recognise the admin")
    # The worst case: eve even has a token the front really minted for trent (as if it leaked),
    # and, from a page of another port, tosses the cookies of the old double-submit check.
    leaked = re.search(FORM_TOKEN, Browser(ADMIN).get("/hydra/admin")[2]).group(1)
    eves_page("stop.html", leaked)
    before = len(refused_stops())
    for origin in ("http://localhost:8000", "http://127.0.0.1:8000"):
        trent.get(f"{origin}/stop.html")
        trent.wait(lambda b: "This form has expired" in b.text() or "stopped" in b.text(), f"the forged Stop from {origin} to land")
        assert "This form has expired" in trent.text() and "Nothing was changed" in trent.text(), trent.text()[:500]
    assert server_pid("victor") == running
    refused = refused_stops()[before:]
    assert len(refused) == 2 and all(incident["user"] == ADMIN for incident in refused), refused
    assert "http://localhost:8000" in refused[0]["detail"] and "http://127.0.0.1:8000" in refused[1]["detail"], refused
    # The admin sees them among the incidents, and his own click on Stop still works.
    trent.get("/hydra/admin")
    trent.wait(lambda b: "Running servers" in b.text(), "the admin page")
    assert 'A Stop of "victor" was refused' in trent.find("#incidents")[0].text
    trent.driver.find_element("css selector", '#servers tr[data-user="victor"] button').click()
    trent.wait(lambda b: "The server of victor was stopped" in b.text(), "the page to say victor's server stopped")
    wait_for(lambda: server_pid("victor") is None, timeout=30)


# --- A person's own lock and the front's start slots --------------------------------------------

BUSY = "Your notebook server is busy"
DEFERRED = "Many notebook servers are starting right now"


def arrive(people):
    """People arriving at once; each one's seconds until the auto-login page."""
    with concurrent.futures.ThreadPoolExecutor(len(people)) as pool:
        return [seconds for seconds, _ in pool.map(visit_until_autologin, people)]


def test_a_person_holding_her_own_lock_holds_no_start_slot_and_is_told_she_is_busy(config, request):
    # One start slot: a slot she kept while her lock is held would stop every other start.
    config(**{"admin.users": f'["{ADMIN}"]', "server.max_concurrent_starts": "1"})
    reload_apache()
    assert 'id="login"' in Browser("stuck").get("/")[2]
    stop_server("stuck")
    baseline = arrive(ARRIVALS[:10])

    # stuck holds her own lock (her runtime directory is hers) for as long as the test needs
    # (at most 5 minutes), and reloads every 2 s meanwhile. --no-fork: the lock goes with the
    # process the test ends.
    holder = subprocess.Popen(["setpriv", "--reuid=stuck", "--regid=stuck", "--init-groups", "--reset-env",
                               "flock", "--no-fork", "/run/hydra/stuck/lock", "sleep", "300"])
    pages, stop_reloading = [], False

    def reload_every_two_seconds():
        browser = Browser("stuck")
        while not stop_reloading:
            status, _, page = browser.get("/")
            pages.append((status, page))
            time.sleep(2)
    try:
        wait_for(lambda: sh("fuser", "/run/hydra/stuck/lock", check=False).stdout.strip() != "", timeout=10)
        with concurrent.futures.ThreadPoolExecutor(1) as reloader:
            reloading = reloader.submit(reload_every_two_seconds)
            time.sleep(3)
            meanwhile = arrive(ARRIVALS[10:])
            arrived = len(pages)
            # With every newcomer in, the one slot is free: her reloads meet her own lock alone.
            wait_for(lambda: len(pages) >= arrived + 3, timeout=30)
            stop_reloading = True
            reloading.result(timeout=120)
    finally:
        holder.kill()
        holder.wait()
    write_figures("hostile-start-slots.txt", [
        "A person holding her own lock, reloading every 2 s; 10 new people at once; server.max_concurrent_starts = 1",
        f"  without her: p50 {percentile(baseline, 0.5):.1f} s, slowest {max(baseline):.1f} s",
        f"  with her:    p50 {percentile(meanwhile, 0.5):.1f} s, slowest {max(meanwhile):.1f} s",
        f"  her visits meanwhile: {len(pages)}: {sum(BUSY in page for _, page in pages)} the busy page, "
        f"the others the page that says starts are full (the one slot taken by a newcomer)"], request)
    assert all(status == 200 and (BUSY in page or DEFERRED in page) for status, page in pages), pages
    assert all(BUSY in page for _, page in pages[arrived + 1:]), pages[arrived:]  # (one reload may have begun before)
    # Before the fix her reload held the one slot up to 75 s at a time, and nobody else started.
    assert max(meanwhile) < 2 * max(baseline) + 10, (baseline, meanwhile)
    # Once she lets go, her next visit starts her server.
    assert visit_until_autologin("stuck")[0] < 120


# --- Logs that name people ----------------------------------------------------------------------

def test_the_gates_log_is_for_root_and_adm_only_not_a_local_account():
    log = pathlib.Path("/var/log/hydra/gate.log")
    info = log.stat()
    assert info.st_mode & 0o777 in (0o640, 0o600), oct(info.st_mode)
    assert info.st_uid == 0 and info.st_gid == int(sh("getent", "group", "adm").stdout.split(":")[2])
    assert as_user("eve", "cat", str(log)).returncode != 0
    assert as_user("eve", "ls", "/var/log/hydra").returncode != 0
