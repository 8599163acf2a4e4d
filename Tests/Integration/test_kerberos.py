"""Issue 7, Kerberos for the web and for ssh: a real KDC (krb5kdc) with this file's people, Apache
with mod_auth_gssapi (SPNEGO) set up as an admin would from apache/hydra.conf and
apache/auth-examples/kerberos.conf, curl --negotiate and Chromium with a ticket, and sshd with
GSSAPIAuthentication on the account hydra created.

Users: radia and donald (this file's own directory people, and principals radia@HYDRA.TEST and
donald@HYDRA.TEST with the directory's password); radia/admin@HYDRA.TEST, a principal that is
not a person's. donald's first visit is the one made while LDAP is down.
"""
import os
import pathlib
import pwd
import re
import urllib.parse

import pytest

from conftest import PASSWORD, REPO, account_files, install_config, login_form, sh
from e2e_site import (CCACHE_DIR, KDC, NEGOTIATE_SEEN, REALM, SSHD, browsers, keep_logs, kinit,  # noqa: F401 (browsers: a fixture)
                      reload_apache, server_pid, ssh)

PORT = 8091             # the Kerberos site: hydra.conf's virtual host with the shipped Kerberos example
PORT_NO_LOCALNAME = 8092  # the same, but GssapiLocalName Off: REMOTE_USER keeps the realm
SITE_CONF = pathlib.Path("/etc/apache2/sites-enabled/zz-hydra-test-kerberos.conf")
AUTH_CONF = pathlib.Path("/etc/hydra/apache-auth-kerberos.conf")
AUTH_CONF_NO_LOCALNAME = pathlib.Path("/etc/hydra/apache-auth-kerberos-no-localname.conf")
UIDS = {"radia": 20111, "donald": 20112}  # the directory's uidNumbers (hydra_site.PEOPLE)


def virtual_host(port, auth_file, log_name):
    """apache/hydra.conf's virtual host on another port, with another auth block: what an admin
    does with hydra.conf and a copy of an auth example. Every change is checked to have happened."""
    text = (REPO / "apache/hydra.conf").read_text()
    block = re.search(r"^<VirtualHost \*:80>$.*?^</VirtualHost>$", text, re.M | re.S)
    assert block, "apache/hydra.conf has one <VirtualHost *:80> block"
    vhost = block.group(0)
    for old, new in [("<VirtualHost *:80>", f"<VirtualHost *:{port}>"),
                     ("Include /etc/hydra/apache-auth.conf", f"Include {auth_file}"),
                     ("/hydra-error.log", f"/{log_name}-error.log"), ("/hydra-access.log", f"/{log_name}-access.log")]:
        assert vhost.count(old) == 1, f"apache/hydra.conf: expected one {old!r}"
        vhost = vhost.replace(old, new)
    return f"Listen {port}\n{vhost}\n"


@pytest.fixture(scope="module")
def realm(site):
    kdc = KDC(["radia", "donald"], others=["radia/admin"]).create().start()
    yield kdc
    kdc.remove()


@pytest.fixture(scope="module", autouse=True)
def kerberos_site(site, realm):
    example = (REPO / "apache/auth-examples/kerberos.conf").read_text()
    AUTH_CONF.write_text(example)  # verbatim: the keytab is where the example says
    assert example.count("GssapiLocalName On") == 1
    AUTH_CONF_NO_LOCALNAME.write_text(example.replace("GssapiLocalName On", "GssapiLocalName Off"))
    SITE_CONF.write_text(virtual_host(PORT, AUTH_CONF, "hydra-kerberos")
                         + virtual_host(PORT_NO_LOCALNAME, AUTH_CONF_NO_LOCALNAME, "hydra-kerberos-nolocal"))
    sh("a2enmod", "-q", "auth_gssapi")
    install_config(**{"site.kerberos_realm": f'"{REALM}"'})
    reload_apache()
    yield
    keep_logs("kerberos-logs", ["radia", "donald"])
    SITE_CONF.unlink()
    AUTH_CONF.unlink()
    AUTH_CONF_NO_LOCALNAME.unlink()
    install_config()
    reload_apache()


@pytest.fixture(scope="module")
def sshd(kerberos_site):
    daemon = SSHD().start()
    yield daemon
    daemon.stop()




# --- curl --negotiate: a browser with a ticket, one request at a time ---------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def curl(path, ccache=None, port=PORT, jar=None, extra=(), negotiate=True):
    """One request with curl (--negotiate with the ticket in `ccache`); no redirects followed."""
    CCACHE_DIR.mkdir(mode=0o700, exist_ok=True)
    head, body = CCACHE_DIR / "curl-headers", CCACHE_DIR / "curl-body"
    argv = ["curl", "-sS", "-D", head, "-o", body, "-w", "%{http_code}"]
    if negotiate:
        argv += ["--negotiate", "-u", ":"]
    if jar:
        argv += ["-b", jar, "-c", jar]
    argv += [*extra, f"http://localhost:{port}{path}"]
    env = {**os.environ, "KRB5CCNAME": ccache or f"FILE:{CCACHE_DIR}/no-ticket"}
    result = sh(*argv, env=env, check=False)
    assert result.returncode == 0, result.stderr
    # The last response's headers (a Negotiate exchange may show a 401 first).
    blocks = [b for b in head.read_bytes().decode(errors="replace").split("\r\n\r\n") if b.strip()]
    headers = [tuple(line.split(":", 1)) for line in blocks[-1].split("\r\n")[1:] if ":" in line]
    return Answer(int(result.stdout), [(k.strip(), v.strip()) for k, v in headers], body.read_text(errors="replace"))


def visit(name, ccache, port=PORT):
    """The site's address with a ticket, then wherever the front leads (the auto-login form, or
    straight to the lab); returns the last answer, which should be the lab."""
    jar = CCACHE_DIR / f"{name}-{port}.cookies"
    answer = curl("/", ccache, port, jar)
    if answer.status == 200 and 'id="login"' in answer.body:
        action, fields = login_form(answer.body)
        form = [arg for k, v in fields.items() for arg in ("--data-urlencode", f"{k}={v}")]
        answer = curl(action, ccache, port, jar, extra=["-H", f"Origin: http://localhost:{port}", *form])
    hops = 0
    while answer.status in (301, 302, 303) and hops < 5:
        location = answer.header("Location")[0]
        answer = curl(urllib.parse.urlsplit(location).path or "/", ccache, port, jar)
        hops += 1
    return answer


def ensure_lab(name):
    answer = visit(name, kinit(name))
    assert answer.status == 200 and "JupyterLab" in answer.body, (answer.status, answer.body[:300])


# --- the web ----------------------------------------------------------------------------------

def test_a_ticket_alone_signs_in_with_curl_negotiate_and_opens_the_persons_own_lab():
    ccache = kinit("radia")
    whoami = curl("/hydra/whoami", ccache)
    # The shipped example maps the principal to the local name (GssapiLocalName On).
    assert whoami.status == 200 and "Signed in as radia" in whoami.body, whoami.body
    assert "REMOTE_USER=radia</code>" in whoami.body
    answer = visit("radia", ccache)
    assert answer.status == 200 and "JupyterLab" in answer.body, (answer.status, answer.body[:300])
    account = pwd.getpwnam("radia")
    assert (account.pw_uid, account.pw_dir, account.pw_shell) == (UIDS["radia"], "/home/radia", "/bin/bash")
    assert pathlib.Path("/home/radia/tutorials").is_dir()


def test_without_a_ticket_the_site_asks_for_kerberos_and_a_wrong_password_gets_nothing():
    before = account_files()
    no_ticket = curl("/", None)
    assert no_ticket.status == 401
    offered = " ".join(no_ticket.header("WWW-Authenticate"))
    assert "Negotiate" in offered and 'Basic realm="Jupyter"' in offered
    wrong = curl("/", negotiate=False, extra=["-u", "donald:not the password"])
    assert wrong.status == 401
    # The example's Basic fallback asks the KDC: the right Kerberos password is accepted.
    right = curl("/hydra/whoami", negotiate=False, extra=["-u", f"donald:{PASSWORD}"])
    assert right.status == 200 and "Signed in as donald" in right.body
    assert account_files() == before


def test_another_principals_ticket_cannot_open_the_first_persons_lab():
    ensure_lab("radia")
    donald = kinit("donald")
    for path in ["/user/radia/lab", "/user/radia/api/contents/tutorials", "/user/radia/files/tutorials/lesson1.ipynb"]:
        assert curl(path, donald).status == 403, path
    websocket = curl("/user/radia/api/kernels", donald, extra=[
        "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
        "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
    assert websocket.status == 403


def test_a_principal_that_is_not_a_person_gets_no_lab():
    # radia/admin@HYDRA.TEST is someone's admin identity, not radia: it must never become radia.
    ensure_lab("radia")
    admin = kinit("radia/admin", password=None)
    before = account_files()
    # GssapiLocalName finds no local name for it, and mod_auth_gssapi refuses the sign-in.
    for path in ["/", "/hydra/whoami", "/user/radia/lab", "/user/radia/api/contents/tutorials"]:
        answer = curl(path, admin)
        assert answer.status == 401, (path, answer.status)
        assert "radia" not in answer.body
    assert account_files() == before


def test_without_the_local_name_mapping_the_front_strips_the_realm_and_the_lab_stays_closed():
    # An admin who leaves out GssapiLocalName: REMOTE_USER is radia@HYDRA.TEST. The front maps it to
    # radia (site.kerberos_realm), and the /user/radia/ owner check, which compares REMOTE_USER,
    # fails closed rather than open.
    ensure_lab("radia")
    ccache = kinit("radia")
    whoami = curl("/hydra/whoami", ccache, port=PORT_NO_LOCALNAME)
    assert whoami.status == 200, whoami.body
    assert f"REMOTE_USER=radia@{REALM}</code>" in whoami.body and "as the user <code>radia</code>" in whoami.body
    assert curl("/user/radia/api/contents/tutorials", ccache, port=PORT_NO_LOCALNAME).status == 403


def test_chromium_with_the_negotiate_allowlist_opens_the_lab_with_a_ticket_alone(browsers):
    ccache = kinit("radia")
    browser = browsers("radia-kerberos", base=f"http://localhost:{PORT}",
                       args=["--auth-server-allowlist=localhost"], env={"KRB5CCNAME": ccache},
                       local_state=NEGOTIATE_SEEN)
    browser.get("/")
    browser.wait_for_lab("radia")
    assert browser.path.startswith("/user/radia/lab")
    browser.wait(lambda b: any(e.text.strip().startswith("tutorials")
                               for e in b.find("#filebrowser .jp-DirListing-item")), "the tutorials folder")
    # A kernel, through the websocket, with nothing but the ticket.
    result = browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
        const base = location.pathname.replace(/lab.*$/, "");  // /user/radia/
        fetch(base + "api/kernels", {method: "POST", headers: {"X-XSRFToken": xsrf, "Content-Type": "application/json"}, body: "{}"})
            .then(r => r.json()).then(kernel => {
                const url = `ws://${location.host}${base}api/kernels/${kernel.id}/channels`;
                const ws = new WebSocket(url);
                const msg_id = "hydra-test-" + Math.random();
                ws.onopen = () => ws.send(JSON.stringify({
                    header: {msg_id, username: "", session: "hydra-test", msg_type: "execute_request", version: "5.3", date: ""},
                    parent_header: {}, metadata: {}, channel: "shell", buffers: [],
                    content: {code: "import getpass; print(getpass.getuser())", silent: false, store_history: false,
                              user_expressions: {}, allow_stdin: false}}));
                ws.onmessage = event => {
                    const msg = JSON.parse(event.data);
                    if (msg.parent_header.msg_id === msg_id && msg.msg_type === "stream") { done(msg.content.text.trim()); ws.close(); }
                };
                ws.onerror = () => done("websocket refused");
            }, e => done("no kernel: " + e));
    """)
    assert result == "radia"
    browser.shot("kerberos-lab")


def test_ldap_down_on_a_first_kerberos_visit_says_try_again_and_creates_nothing(directory, browsers):
    # Kerberos signs donald in without LDAP; his account needs the directory's UID.
    with pytest.raises(KeyError):
        pwd.getpwnam("donald")  # this file's first visit for donald
    ccache = kinit("donald")
    before = account_files()
    directory.stop()
    try:
        answer = curl("/", ccache)
        assert answer.status == 503, (answer.status, answer.body[:300])
        assert answer.header("Retry-After") and "Please try again" in answer.body
        browser = browsers("donald-kerberos", base=f"http://localhost:{PORT}",
                           args=["--auth-server-allowlist=localhost"], env={"KRB5CCNAME": ccache},
                       local_state=NEGOTIATE_SEEN)
        browser.get("/")
        browser.wait(lambda b: "try again" in b.text(), "the try-again page")
        browser.shot("ldap-down")
        assert account_files() == before and not pathlib.Path("/home/donald").exists()
    finally:
        directory.start()
    answer = visit("donald", ccache)
    assert answer.status == 200 and "JupyterLab" in answer.body
    assert pwd.getpwnam("donald").pw_uid == UIDS["donald"]


# --- ssh -----------------------------------------------------------------------------------------

GSSAPI_ONLY = ["-o", "GSSAPIAuthentication=yes", "-o", "PreferredAuthentications=gssapi-with-mic", "-o", "BatchMode=yes"]


def test_ssh_with_a_ticket_logs_in_to_the_account_hydra_created_and_sees_the_server(sshd):
    ensure_lab("radia")
    pid = server_pid("radia")
    assert pid
    result = ssh("radia", "id -un; id -u; ipynb-launch status", kinit("radia"), GSSAPI_ONLY)
    assert result.returncode == 0, result.stderr + sshd.log.read_text(errors="replace")[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:2] == ["radia", str(UIDS["radia"])]
    status = result.stdout + result.stderr
    assert f"running (PID {pid}," in status, status


def test_ssh_with_another_persons_ticket_does_not_open_the_account(sshd):
    ensure_lab("radia")
    result = ssh("radia", "id -un", kinit("donald"), GSSAPI_ONLY)
    assert result.returncode == 255 and "Permission denied" in result.stderr
    assert "radia" not in result.stdout


def test_ssh_password_login_to_a_hydra_account_is_impossible(sshd):
    ensure_lab("radia")
    # The account has no password of its own...
    shadow = next(line for line in pathlib.Path("/etc/shadow").read_text().splitlines() if line.startswith("radia:"))
    assert shadow.split(":")[1][:1] in ("!", "*"), "radia's shadow entry holds a usable password"
    # ...and the right Kerberos password, offered at every prompt, is never asked for.
    asked = CCACHE_DIR / "askpass-asked"
    asked.unlink(missing_ok=True)
    askpass = CCACHE_DIR / "askpass"
    askpass.write_text(f"#!/bin/sh\ntouch {asked}\necho '{PASSWORD}'\n")
    askpass.chmod(0o700)
    result = ssh("radia", "id -un", None, [
        "-o", "PreferredAuthentications=keyboard-interactive,password", "-o", "GSSAPIAuthentication=no",
        "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-o", "BatchMode=no"],
        env={"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
    assert result.returncode == 255, result.stdout
    offered = re.search(r"Permission denied \(([^)]*)\)", result.stderr)
    assert offered, result.stderr
    assert "password" not in offered.group(1) and "keyboard-interactive" not in offered.group(1)
    assert not asked.exists()
