"""Issue 6: from the site URL to the user's own JupyterLab, through real Apache, sudo, slapd and
Jupyter, on one origin, with XSRF checks on."""
import grp
import json
import os
import pathlib
import re
import signal
import urllib.parse

import pytest

from conftest import (FRONT_LOG, PREFIX, REPO, UPSTREAM, Browser, Upstream, account_files, as_user, as_web_server,
                      front_daemon_pid, login_form, reload_apache, sh, wait_for)



def hydra_log():
    """The front's log (hydra-cgi's stderr, under hydra-detached where systemd is not PID 1) and
    Apache's error logs (requests' errors in the site's)."""
    return "".join(path.read_text(errors="replace") for path in (FRONT_LOG, pathlib.Path("/var/log/apache2/error.log"),
                                                                 pathlib.Path("/var/log/apache2/hydra-error.log")))


def sign_in(user):
    """A visit to the site root, then the auto-login POST, as a browser would do it."""
    browser = Browser(user)
    status, headers, page = browser.get("/")
    assert status == 200, page
    action, fields = login_form(page)
    status, headers, _ = browser.post(action, fields)
    assert status == 302, (status, headers)
    return browser, fields, headers


@pytest.fixture()
def user(site):
    def make(name):
        result = sh(PREFIX / "addldapuser", name, check=False)
        assert result.returncode in (0, 1)
        return name
    return make


def test_visit_answers_an_auto_login_page_that_keeps_xsrf_on(site):
    browser = Browser("ken")
    status, headers, page = browser.get("/")
    assert status == 200, page
    assert headers["Cache-Control"] == "no-store"
    csp = headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([0-9a-f]+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in page and "<noscript>" in page
    action, fields = login_form(page)
    assert action == "/user/ken/login?next=%2Fuser%2Fken%2Flab"
    assert len(fields["password"]) == 64 and fields["_xsrf"] == browser.cookies["_xsrf"]
    assert "Path=/user/ken/" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    # The token is in the page body only: never in a URL or a log line.
    assert fields["password"] not in action
    log = hydra_log() + pathlib.Path("/var/log/apache2/hydra-access.log").read_text()
    assert "visit: started server" in log and fields["password"] not in log


def test_auto_login_post_then_lab_answers(site):
    browser, _, headers = sign_in("ken")
    assert headers["Location"] == "/user/ken/lab"
    assert "hydra-jupyter" in browser.cookies
    status, _, page = browser.get("/user/ken/lab")
    assert status == 200 and "JupyterLab" in page


def test_lab_page_carries_no_token_that_would_replace_the_browsers_site_credentials(site):
    browser, fields, _ = sign_in("ken")
    status, _, page = browser.get("/user/ken/lab")
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert status == 200 and config["token"] == "" and fields["password"] not in page


def test_kernel_through_apache_computes_one_plus_one(site):
    browser, _, _ = sign_in("ken")
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    result = sh("/opt/hydra/jupyter/bin/python", REPO / "Tests/Integration/kernel_roundtrip.py", "http://localhost", "ken",
                "--cookie", cookie, "--xsrf", browser.cookies["_xsrf"], "--header", f"Authorization: {browser.auth}", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "execute_result: 2 " in result.stdout


def test_post_without_xsrf_is_refused_by_jupyter_through_apache(site):
    browser = Browser("ken")
    _, _, page = browser.get("/")
    _, fields = login_form(page)
    browser.cookies.pop("_xsrf")
    status, _, _ = browser.post("/user/ken/login?next=%2Fuser%2Fken%2Flab", {"password": fields["password"]})
    assert status == 403


def test_another_users_server_is_forbidden_and_anonymous_is_unauthorized(user):
    user("grace")
    sign_in("grace")
    status, _, _ = Browser("ken").get("/user/grace/api/status")
    assert status == 403
    status, _, _ = Browser().get("/user/grace/api/status")
    assert status == 401


def test_second_visit_reuses_the_same_server(site):
    _, first, _ = sign_in("ken")
    pid = json.loads(as_user("ken", PREFIX / "ipynb-launch", "status", "--json").stdout)["pid"]
    _, second, _ = sign_in("ken")
    assert second["password"] == first["password"]
    assert json.loads(as_user("ken", PREFIX / "ipynb-launch", "status", "--json").stdout)["pid"] == pid


def test_logout_leads_back_to_the_front_and_a_new_login_works(site):
    browser, _, _ = sign_in("ken")
    status, headers, _ = browser.get("/user/ken/logout")
    assert status == 302 and headers["Location"] == "/?logged_out=1"
    status, _, page = browser.get("/?logged_out=1")
    assert status == 200 and "You are logged out" in page
    # Jupyter's own login page is never shown: it leads to the front, keeping next.
    status, headers, _ = browser.get("/user/ken/login?next=%2Fuser%2Fken%2Ftree")
    assert status == 302 and headers["Location"].endswith("/?next=%2Fuser%2Fken%2Ftree")
    status, _, page = browser.get("/?next=%2Fuser%2Fken%2Ftree")
    action, _ = login_form(page)
    assert action.endswith("next=%2Fuser%2Fken%2Ftree")




def test_returning_browser_goes_straight_to_its_lab_without_running_a_helper(site):
    browser, fields, _ = sign_in("alan")
    assert browser.cookies["hydra-server"] and browser.cookies["hydra-server"] not in fields["password"]
    # Within sync.visit_sync_interval_seconds of the front's answer (cookie hydra-recent), Apache
    # itself sends the browser to its lab: not even the front runs.
    logged = hydra_log().count("visit: running server")
    status, headers, _ = browser.get("/")
    assert status == 302 and headers["Location"].endswith("/user/alan/lab"), (status, headers)
    assert hydra_log().count("visit: running server") == logged
    # After that the front answers again (and runs the sync after its answer), the same way.
    browser.cookies.pop("hydra-recent")
    status, headers, _ = browser.get("/")
    assert status == 302 and headers["Location"] == "/user/alan/lab", (status, headers)
    assert "visit: running server, sent to the lab" in hydra_log()
    assert browser.cookies["hydra-recent"] == "1"
    status, _, page = browser.get(headers["Location"])
    assert status == 200 and "JupyterLab" in page


def test_browser_without_a_jupyter_login_gets_the_auto_login_page_from_the_running_server(site):
    first, fields, _ = sign_in("alan")
    # A new browser, or one whose Jupyter cookie expired (Jupyter then sends it to /?next=...):
    # the page comes from the running server's published token, never a redirect loop.
    for browser, path in ((Browser("alan"), "/"), (first, "/?next=%2Fuser%2Falan%2Flab")):
        status, _, page = browser.get(path)
        assert status == 200, page
        _, again = login_form(page)
        assert again["password"] == fields["password"]
    first.cookies["hydra-server"] = "0" * 20  # a tag of a replaced server
    first.cookies.pop("hydra-recent")  # (the front's own decision; Apache's shortcut is tested above)
    status, _, page = first.get("/")
    assert status == 200 and login_form(page)[1]["password"] == fields["password"]


def test_login_token_file_is_for_the_web_server_only_not_other_users(site):
    sign_in("alan")
    token_file = pathlib.Path("/run/hydra/alan/login-token")
    info = token_file.lstat()
    assert oct(info.st_mode & 0o7777) == "0o640" and info.st_gid == grp.getgrnam("www-data").gr_gid
    assert as_web_server("cat", token_file).stdout.strip()
    other = sh("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", token_file, check=False)
    assert other.returncode != 0 and "Permission denied" in other.stderr


def test_dead_server_behind_a_returning_browser_is_restarted_not_proxied(site):
    browser, fields, _ = sign_in("alan")
    pid = json.loads(as_user("alan", PREFIX / "ipynb-launch", "status", "--json").stdout)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pathlib.Path(f"/proc/{pid}").exists())
    # Apache sends the returning browser to its lab; the gate finds no server there and sends it
    # back to the front (keeping where it was going), which starts a fresh one.
    status, headers, _ = browser.get("/")
    assert status == 302 and headers["Location"].endswith("/user/alan/lab"), (status, headers)
    status, headers, _ = browser.get("/user/alan/lab")
    assert status == 302 and headers["Location"] == "/?next=%2Fuser%2Falan%2Flab", (status, headers)
    status, _, page = browser.get(headers["Location"])
    assert status == 200, page
    assert login_form(page)[1]["password"] != fields["password"]


def test_warm_visit_syncs_the_course_after_the_answer(site, config):
    config(**{"sync.visit_sync_interval_seconds": "0", "sync.fetch_interval_seconds": "0"})
    reload_apache()
    browser, _, _ = sign_in("alan")
    upstream = Upstream(UPSTREAM)
    upstream.commit({"warm-visit.md": "delivered after the answer\n"})
    status, _, _ = browser.get("/")
    assert status == 302
    delivered = pathlib.Path("/home/alan/tutorials/warm-visit.md")
    wait_for(delivered.exists, timeout=60)
    upstream.commit({}, remove=["warm-visit.md"])
    config()
    reload_apache()


def test_logged_out_page_forgets_the_returning_browser(site):
    browser, _, _ = sign_in("alan")
    assert "hydra-server" in browser.cookies and "hydra-recent" in browser.cookies
    status, _, _ = browser.get("/?logged_out=1")
    assert status == 200
    assert "hydra-server" not in browser.cookies and "hydra-recent" not in browser.cookies
    status, _, page = browser.get("/")
    assert status == 200 and login_form(page)


def test_next_cannot_send_the_login_elsewhere(site):
    for hostile in ["https://evil.example/", "//evil.example/", "/user/grace/lab", "/user/ken/../grace/lab"]:
        _, _, page = Browser("ken").get("/?next=" + urllib.parse.quote(hostile, safe=""))
        action, _ = login_form(page)
        assert action == "/user/ken/login?next=%2Fuser%2Fken%2Flab", hostile


def test_health_needs_no_login_and_holds_no_secret(site):
    status, _, body = Browser().get("/hydra/health")
    data = json.loads(body)
    assert status == 200 and data["status"] == "ok" and data["server_sockets"] >= 1
    assert not re.search(r"[0-9a-f]{32}", body)


def test_refused_account_gets_a_403_page(site):
    status, _, page = Browser("rootish").get("/")
    assert status == 403 and "not available for this account" in page


def test_ldap_down_on_a_first_visit_gets_503_with_retry_after(directory, site):
    directory.stop()
    try:
        status, headers, _ = Browser("crowd39").get("/")
    finally:
        directory.start()
    # Apache's own LDAP auth fails first when LDAP is down: either way, no 200 and no account.
    assert status in (500, 503)
    assert "crowd39:" not in pathlib.Path("/etc/passwd").read_text()


# --- sudo: what the web server may and may not do (hydra's own sudoers file) -----------------

@pytest.mark.parametrize("argv", [
    ["sudo", "-n", "-u", "root", str(PREFIX / "ipynb-launch"), "status"],
    ["sudo", "-n", "-u", "daemon", str(PREFIX / "ipynb-launch"), "status"],
    ["sudo", "-n", "-u", "localclash", str(PREFIX / "ipynb-launch"), "status"],
    ["sudo", "-n", "/bin/sh", "-c", "id"],
    ["sudo", "-n", "-u", "ken", "/bin/sh", "-c", "id"],
])
def test_sudo_refuses_the_web_server_anything_but_the_two_helpers(site, argv):
    result = as_web_server(*argv)
    assert result.returncode != 0
    assert "may not run sudo" in result.stderr or "not allowed" in result.stderr or "password is required" in result.stderr


def test_sudo_addldapuser_root_is_refused(site):
    before = account_files()
    result = as_web_server("sudo", "-n", PREFIX / "addldapuser", "--json", "--", "root")
    assert result.returncode == 77
    assert account_files() == before


@pytest.mark.parametrize("method,headers", [
    ("POST", {"Content-Type": "application/json", "Origin": "http://localhost"}),
    ("GET", {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}),
])
def test_another_users_kernels_are_forbidden_for_posts_and_websockets(user, method, headers):
    user("grace")
    sign_in("grace")
    status, _, _ = Browser("ken").request(method, "/user/grace/api/kernels", headers=headers)
    assert status == 403


# --- hostile REMOTE_USER values, from a sandbox-only virtual host whose Basic auth accepts them -----

HOSTILE_REMOTE_USERS = {
    # name: expected status (400: not a valid name; 403: a valid name this site refuses)
    "Ada": 400, "a b": 400, "ada;id": 400, "$(id)": 400, "*)(uid=*": 400, "../x": 400, "-oProxyCommand=id": 400,
    "ａda": 400, "x" * 33: 400, "ken@OTHER.REALM": 400, "ada\u200b": 400,
    "root": 403, "www-data": 403, "nobody": 403, "daemon": 403, "bin": 403, "opsadmin": 403,
}


@pytest.fixture(scope="module")
def hostile_site(site):
    htpasswd = pathlib.Path("/etc/hydra-test-htpasswd")
    htpasswd.unlink(missing_ok=True)
    for name in HOSTILE_REMOTE_USERS:
        sh("htpasswd", "-b", "-m", *(["-c"] if not htpasswd.exists() else []), htpasswd, name, "pw")
    conf = pathlib.Path("/etc/apache2/sites-enabled/zz-hydra-test-hostile.conf")
    front_only = """    AliasMatch "^/" "/usr/lib/hydra/hydra-cgi"
    <Location "/">
        SetHandler "proxy:unix:/run/hydra/.front/cgi.sock|fcgi://localhost"
    </Location>
    <Directory "/usr/lib/hydra">
        <Files "hydra-cgi">
            Require all granted
        </Files>
    </Directory>
"""
    basic_from_file = """    <Location "/">
        AuthType Basic
        AuthName "hostile"
        AuthBasicProvider file
        AuthUserFile /etc/hydra-test-htpasswd
        Require valid-user
    </Location>
"""
    conf.write_text(
        "# Test only: REMOTE_USER is whatever name the client sends (a file of hostile names).\n"
        f"Listen 8081\n<VirtualHost *:8081>\n{front_only}{basic_from_file}</VirtualHost>\n"
        "# Test only: no authentication at all (REMOTE_USER missing).\n"
        f"Listen 8082\n<VirtualHost *:8082>\n{front_only}</VirtualHost>\n")
    sh("apache2ctl", "graceful")
    import time
    time.sleep(1)
    yield
    conf.unlink()
    sh("apache2ctl", "graceful")


@pytest.mark.parametrize("name", sorted(HOSTILE_REMOTE_USERS))
def test_hostile_remote_user_is_refused_before_any_helper_runs(hostile_site, name):
    sh("useradd", "--uid", "3000", "--groups", "sudo", "--no-log-init", "opsadmin", check=False)
    before = account_files()
    status, _, page = Browser(name, "pw").get("/", port=8081)
    assert status == HOSTILE_REMOTE_USERS[name], page
    assert "<script" not in page.split("</title>")[1] or status == 200
    assert account_files() == before
    assert not pathlib.Path(f"/run/hydra/{name}").exists() or name in ("opsadmin",)


def test_missing_remote_user_says_authentication_is_not_configured(hostile_site):
    status, _, page = Browser().get("/", port=8082)
    assert status == 500 and "Sign-in is not configured" in page
    assert "no REMOTE_USER" in hydra_log()


def test_front_daemon_for_mod_proxy_fcgi_exits_cleanly_on_sigterm(site):
    import os
    import signal
    import subprocess
    import time
    socket_path = "/run/hydra/.front/test-cgi.sock"
    process = subprocess.Popen(["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups", "--reset-env",
                                str(PREFIX / "hydra-cgi"), "--socket", socket_path], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(socket_path):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_an_edit_of_hydra_toml_takes_effect_at_once_and_a_broken_one_says_unavailable_until_fixed(site, config):
    """The front is one daemon (hydra-cgi --socket behind mod_proxy_fcgi): it reads hydra.toml
    again at the first request after the file changed, with no restart or reload of anything.
    A file that does not load is answered "hydra is not available" (and logged with its line
    and key) while the daemon keeps running, so fixing the file is all an admin does."""
    daemon = front_daemon_pid()
    assert Browser("ken").get("/hydra/admin")[0] == 403
    config(**{"admin.users": '["ken"]'})
    status, _, page = Browser("ken").get("/hydra/admin")
    assert status == 200 and "ken" in page, "the edit took effect at the next request"
    config(**{"server.idle_timeout_minutes": "5"})
    status, _, page = Browser("ken").get("/")
    assert status == 500 and "hydra is not available" in page and "idle_timeout_minutes" not in page
    assert sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost/hydra/health").stdout == "500"
    assert re.search(r"changed, and it does not load.*unknown key 'server.idle_timeout_minutes'", hydra_log())
    config()
    assert Browser("ken").get("/hydra/admin")[0] == 403, "the fixed file, read again"
    assert Browser("ken").get("/hydra/whoami")[0] == 200
    assert front_daemon_pid() == daemon, "the same daemon all along"
