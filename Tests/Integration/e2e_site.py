"""What the end-to-end tests (test_browser, test_kerberos) add to the sandbox site: a real
headless Chromium driven by WebDriver, and a real Kerberos realm (an MIT KDC with the test
people's principals, the HTTP/localhost key for Apache's mod_auth_gssapi and the host/localhost
key for sshd). Only ever used inside scripts/sandbox: it writes /etc/krb5.conf, /etc/krb5.keytab
and the KDC's database, all on the sandbox's throwaway root.
"""
import contextlib
import fcntl
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hydra_site import ARTIFACTS, PASSWORD, PREFIX, REPO, as_user, install_config, reload_apache, sh, stop_process, wait_for  # noqa: F401 (reload_apache: the tests take it from here)

SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/lib/chromium/chromium"   # the binary itself, not Debian's launcher script
CHROMEDRIVER = "/usr/bin/chromedriver"
PROFILES = pathlib.Path("/tmp/hydra-test-chromium")
# Generous: two cores, other test runs at once, a first visit that creates an account and
# starts a server. A wait ends as soon as its condition holds.
PATIENCE = 120
# Chromium on Linux keeps GSSAPI out of its network service until the profile has seen a
# "WWW-Authenticate: Negotiate" once (Local State: net.received_http_auth_negotiate_headers):
# in a brand-new profile the very first Kerberos sign-in fails, and the next load works. The
# Kerberos tests start from a browser that has met a Kerberos site before.
NEGOTIATE_SEEN = {"net": {"received_http_auth_negotiate_headers": True}}



def wait_for_port(process, port):
    """Until `process` listens on the TCP port (or has exited)."""
    wait_for(lambda: process.poll() is not None or sh("ss", "-Htln", f"sport = :{port}").stdout.strip() != "", timeout=30)


@pytest.fixture()
def browsers():
    """Opens Chromiums on demand; every one is closed after the test, whatever happened."""
    opened = []

    def open_browser(name, **kwargs):
        browser = Chromium(name, **kwargs)
        opened.append(browser)
        return browser
    yield open_browser
    for browser in opened:
        browser.quit()

class Chromium:
    """One headless Chromium with a profile of its own: its own cookies and HTTP auth cache, so
    two of them are two people's browsers."""

    def __init__(self, name, base="http://localhost", args=(), env=None, javascript=True, local_state=None):
        self.name = name
        self.base = base
        profile = PROFILES / name
        shutil.rmtree(profile, ignore_errors=True)
        profile.mkdir(parents=True)
        if local_state:  # the browser-wide preferences, as a browser used before has them
            (profile / "Local State").write_text(json.dumps(local_state))
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        # Root in the sandbox: Chromium's own sandbox cannot run, hence --no-sandbox.
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                    f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync", *args]:
            options.add_argument(arg)
        if not javascript:
            options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        (ARTIFACTS / "chromium").mkdir(parents=True, exist_ok=True)
        service = Service(CHROMEDRIVER, log_output=str(ARTIFACTS / "chromium" / f"chromedriver-{name}.log"),
                          env={**os.environ, **(env or {})})
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(PATIENCE)
        self.driver.set_script_timeout(PATIENCE)
        self.console_entries = []

    def quit(self):
        self.driver.quit()

    def get(self, path):
        self.driver.get(path if "://" in path else self.base + path)

    @property
    def url(self):
        return self.driver.current_url

    @property
    def path(self):
        """The current URL's path and query (credentials and origin left out)."""
        url = self.driver.current_url
        rest = url.split("://", 1)[-1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"

    def text(self):
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception:  # a page between loads
            return ""

    def find(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def console(self):
        """Every console and network error message of the browser so far."""
        try:
            self.console_entries += [e.get("message", "") for e in self.driver.get_log("browser")]
        except Exception as error:  # noqa: BLE001 (a diagnostic must not hide the failure)
            self.console_entries.append(f"no console log: {error}")
        return self.console_entries

    def save_console(self, name):
        """The browser's console and network errors, for the artifacts."""
        lines = [m for m in self.console() if "taking too long to activate" not in m]
        (ARTIFACTS / "chromium" / f"{name}-console.log").write_text("\n".join(lines) + "\n")

    def wait(self, condition, what, timeout=PATIENCE):
        """Waits until condition(self) is true; on timeout, fails with what the browser shows
        (and a screenshot named after the browser)."""
        try:
            # JupyterLab redraws as it goes: an element that went stale is looked up again next poll.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda _: condition(self))
        except TimeoutException:
            self.shot(f"FAILED-{self.name}")
            self.save_console(f"FAILED-{self.name}")
            raise AssertionError(f"{self.name}: waited {timeout}s for {what}; the browser is at {self.path} "
                                 f"showing {self.driver.title!r}: {self.text()[:600]!r}") from None

    def wait_for_lab(self, user, timeout=PATIENCE):
        """Until JupyterLab of `user` has drawn its file browser. A page that will not change by
        itself (an error page of Apache, Jupyter, hydra or the browser) fails at once."""
        def arrived(b):
            if b.path.startswith(f"/user/{user}/lab") and b.find(".jp-DirListing-item"):
                return True
            dead_end = b.dead_end()
            if dead_end:
                where = b.path
                b.shot(f"FAILED-{b.name}")
                b.save_console(f"FAILED-{b.name}")
                b.driver.get("about:blank")  # the page's pending requests go with it
                raise AssertionError(f"{b.name}: on the way to {user}'s JupyterLab, stopped at {where}: {dead_end}")
            return False
        return self.wait(arrived, f"{user}'s JupyterLab with its file browser", timeout)

    # hydra's pages that end a visit (Pages.swift titles); the starting page reloads by itself.
    HYDRA_ERROR_TITLES = ("Not available for this account", "Please try again shortly", "hydra is not available",
                          "Invalid account name", "Sign-in is not configured", "Not found", "Not allowed",
                          "Your home folder is full", "Logged out")

    def dead_end(self):
        """What the browser shows, if it is an error page that stays as it is; else None."""
        url, title = self.driver.current_url, self.driver.title
        if url.startswith("chrome-error://"):
            return "the browser's own error page (e.g. a 401 it could not answer)"
        if re.match(r"^\d{3} ", title):  # Apache: "403 Forbidden"
            return f"Apache's {title!r}"
        if title == "Jupyter Server" and re.search(r"^\d{3} : ", self.text(), re.M):  # Jupyter's error template
            return "Jupyter's " + repr(self.text()[:80])
        if title in self.HYDRA_ERROR_TITLES:
            return f"hydra's {title!r} page: {self.text()[:200]!r}"
        if "/lab" in url and title == "JupyterLab":
            # JupyterLab sends a token from its page as "Authorization: token ..." with every
            # request: that replaces the browser's own Basic or Negotiate credentials, so Apache
            # answers 401 (an endless password prompt) and the lab never draws.
            token = self.driver.execute_script(
                "const c = document.getElementById('jupyter-config-data');"
                "return c ? (JSON.parse(c.textContent).token || '') : '';")
            if token:
                return ("the lab page gives JupyterLab the server's token, which it sends as 'Authorization: token' "
                        "instead of the site's credentials: Apache refuses its requests (401)")
        return None


# --- Kerberos ------------------------------------------------------------------------------------

REALM = "HYDRA.TEST"
KDC_PORT = 88
KRB5_CONF = pathlib.Path("/etc/krb5.conf")
KDC_DIR = pathlib.Path("/var/lib/hydra-test/krb5kdc")
HTTP_KEYTAB = pathlib.Path("/etc/apache2/http.keytab")  # the path apache/auth-examples/kerberos.conf names
HOST_KEYTAB = pathlib.Path("/etc/krb5.keytab")           # sshd's default
CCACHE_DIR = pathlib.Path("/tmp/hydra-test-ccaches")

KRB5_CONF_TEXT = f"""# The sandbox's realm (test only).
[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{KDC_PORT}
    }}

[domain_realm]
    localhost = {REALM}
"""

KDC_CONF_TEXT = f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{KDC_PORT}
    kdc_tcp_listen = 127.0.0.1:{KDC_PORT}

[realms]
    {REALM} = {{
        database_name = {KDC_DIR}/principal
        key_stash_file = {KDC_DIR}/stash
        acl_file = {KDC_DIR}/kadm5.acl
        max_life = 10h 0m 0s
        default_principal_flags = +preauth
    }}

[logging]
    kdc = FILE:{KDC_DIR}/kdc.log
"""


class KDC:
    """krb5kdc in the foreground (a child of the test run), with its own database. `people` get
    the directory's password; `others` (e.g. "radia/admin") a random key, for tickets via kinit -k."""

    def __init__(self, people, others=()):
        self.people = people
        self.others = others
        self.saved_krb5_conf = None
        self.process = None
        self.env = {**os.environ, "KRB5_CONFIG": str(KRB5_CONF), "KRB5_KDC_PROFILE": str(KDC_DIR / "kdc.conf")}

    def kadmin(self, query):
        return sh("kadmin.local", "-r", REALM, "-q", query, env=self.env)

    def create(self):
        self.saved_krb5_conf = KRB5_CONF.read_bytes() if KRB5_CONF.exists() else None
        KRB5_CONF.write_text(KRB5_CONF_TEXT)
        os.chmod(KRB5_CONF, 0o644)
        shutil.rmtree(KDC_DIR, ignore_errors=True)
        KDC_DIR.mkdir(parents=True, mode=0o700)
        (KDC_DIR / "kdc.conf").write_text(KDC_CONF_TEXT)
        (KDC_DIR / "kadm5.acl").write_text("")
        sh("kdb5_util", "-r", REALM, "create", "-s", "-W", "-P", "hydra-test-master-key", env=self.env)
        for name in self.people:
            self.kadmin(f'addprinc -pw "{PASSWORD}" {name}')
        for name in self.others:
            self.kadmin(f"addprinc -randkey {name}")
            self.kadmin(f"ktadd -k {KDC_DIR / 'others.keytab'} {name}")
        for service, keytab, owner in [("HTTP/localhost", HTTP_KEYTAB, "www-data"), ("host/localhost", HOST_KEYTAB, "root")]:
            self.kadmin(f"addprinc -randkey {service}")
            keytab.unlink(missing_ok=True)
            self.kadmin(f"ktadd -k {keytab} {service}")
            shutil.chown(keytab, owner, owner)
            os.chmod(keytab, 0o400)
        return self

    def start(self):
        self.process = subprocess.Popen(["krb5kdc", "-n", "-r", REALM], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.process, KDC_PORT)
        assert self.process.poll() is None, "krb5kdc exited at start: " + self.log()
        return self

    def stop(self):
        stop_process(self.process)

    def log(self):
        path = KDC_DIR / "kdc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self):
        self.stop()
        shutil.rmtree(KDC_DIR, ignore_errors=True)
        for path in (HTTP_KEYTAB, HOST_KEYTAB):
            path.unlink(missing_ok=True)
        shutil.rmtree(CCACHE_DIR, ignore_errors=True)
        if self.saved_krb5_conf is not None:
            KRB5_CONF.write_bytes(self.saved_krb5_conf)


def kinit(name, password=PASSWORD):
    """A ticket for `name` in a credential cache of its own; returns the KRB5CCNAME value.
    Without a password: from the KDC's keytab of `others`."""
    CCACHE_DIR.mkdir(mode=0o700, exist_ok=True)
    ccache = CCACHE_DIR / name.replace("/", "_")
    ccache.unlink(missing_ok=True)
    if password is None:
        sh("kinit", "-c", f"FILE:{ccache}", "-k", "-t", KDC_DIR / "others.keytab", f"{name}@{REALM}")
    else:
        sh("kinit", "-c", f"FILE:{ccache}", f"{name}@{REALM}", input=password + "\n")
    return f"FILE:{ccache}"


# --- the site, as the admin changes it ----------------------------------------------------------

@contextlib.contextmanager
def start_in_progress(name):
    """Holds the front's per-user start lock (<runtime_dir>/.front/user-NAME, see StartGate.swift),
    as a visit that is busy starting this person's server does: meanwhile the front answers
    "starting". The file stays the web server's, as the front would have made it."""
    path = pathlib.Path("/run/hydra/.front") / f"user-{name}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o660)
    try:
        if os.fstat(fd).st_uid == 0:
            web = pwd.getpwnam("www-data")
            os.fchown(fd, web.pw_uid, web.pw_gid)
            os.fchmod(fd, 0o660)
        # A real visit may hold it for a moment: take it as soon as it is free.
        wait_for(lambda: _try_lock(fd), timeout=PATIENCE, interval=0.05)
        yield
    finally:
        os.close(fd)


def _try_lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def stop_server(name):
    """`ipynb-launch stop` as the user (over ssh they would type the same), if the account exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    as_user(name, PREFIX / "ipynb-launch", "stop")


def server_pid(name):
    """The PID `ipynb-launch status --json` reports for the user's server, or None."""
    result = as_user(name, PREFIX / "ipynb-launch", "status", "--json")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return data.get("pid") if data.get("running") else None


@contextlib.contextmanager
def site_with_admins(admins, logs, people):
    """The site with `admins` in [admin] (then graceful, as the README says); afterwards Apache's
    and the people's server logs kept under `logs`, their servers stopped, the default
    configuration back."""
    install_config(**{"admin.users": json.dumps(admins)})
    reload_apache()
    try:
        yield
    finally:
        keep_logs(logs, people)
        for name in people:
            stop_server(name)
        install_config()
        reload_apache()


def keep_logs(folder, users):
    """Apache's logs and the users' server logs, copied into the artifacts for a failed run."""
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    sources = list(pathlib.Path("/var/log/apache2").glob("*.log")) + [pathlib.Path(f"/run/hydra/{u}/server.log") for u in users]
    for source in sources:
        if source.exists():
            name = source.name if source.parent.name == "apache2" else f"{source.parent.name}-{source.name}"
            shutil.copyfile(source, target / name)


# --- sshd with Kerberos --------------------------------------------------------------------------

# What an admin adds for hydra's accounts (/etc/ssh/sshd_config.d/hydra.conf): a Kerberos ticket
# opens the account hydra created; a password never does. The account's own password is locked,
# but that is not enough: with Debian's defaults (PasswordAuthentication yes, UsePAM yes) and
# libpam-krb5 installed, sshd's PAM login accepts the person's Kerberos password (measured).
# Other accounts of the machine keep whatever the rest of sshd_config says.
SSHD_HYDRA_CONF = (REPO / "etc/ssh/sshd_config.d/hydra.conf").read_text()  # the file sites install
SSHD_DIR = pathlib.Path("/tmp/hydra-test-sshd")
SSH_PORT = 22


class SSHD:
    """The sandbox's sshd: Debian's sshd_config with the drop-in above, in the foreground."""

    def __init__(self):
        self.process = None
        self.log = SSHD_DIR / "sshd.log"
        self.dropin = pathlib.Path("/etc/ssh/sshd_config.d/hydra.conf")

    def start(self):
        shutil.rmtree(SSHD_DIR, ignore_errors=True)
        SSHD_DIR.mkdir(mode=0o700)
        pathlib.Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.dropin.write_text(SSHD_HYDRA_CONF)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", SSHD_DIR / "host_ed25519")
        options = [
            "-o", f"HostKey={SSHD_DIR / 'host_ed25519'}", "-o", f"Port={SSH_PORT}", "-o", "ListenAddress=127.0.0.1",
            "-o", f"PidFile={SSHD_DIR / 'sshd.pid'}",
            # Sandbox only: sshd would look for host/<this machine's name>, and the sandbox's
            # name is not "localhost", the name the clients use (a real host has its own key).
            "-o", "GSSAPIStrictAcceptorCheck=no",
        ]
        sh("/usr/sbin/sshd", "-t", *options)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", *options], stdout=log, stderr=log)
        wait_for_port(self.process, SSH_PORT)
        assert self.process.poll() is None, "sshd exited at start: " + self.log.read_text(errors="replace")
        return self

    def stop(self):
        stop_process(self.process)
        self.dropin.unlink(missing_ok=True)


def ssh(user, command, ccache=None, options=(), env=None, timeout=60):
    """The ssh client, as root, with the given credential cache (none: no ticket at all)."""
    argv = ["ssh", "-F", "/dev/null", "-p", str(SSH_PORT), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=30", *options, f"{user}@localhost", command]
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/root", "KRB5CCNAME": ccache or f"FILE:{SSHD_DIR}/no-ticket",
                   **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL,
                          timeout=timeout)
