"""Issue 3's smoke test: each real component of the sandbox answers, wired as in production."""
import json

from conftest import LDAP_URL, PASSWORD, PREFIX, REPO, SITE_URL, as_web_server, sh


def test_slapd_answers_a_search(directory):
    out = sh("ldapsearch", "-x", "-H", LDAP_URL, "-b", "ou=people,dc=hydra,dc=test", "-LLL", "(uid=ada)", "uidNumber").stdout
    assert "uidNumber: 20001" in out


def curl(*args):
    """GET through the sandbox's Apache; returns (status, body)."""
    result = sh("curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def test_apache_requires_ldap_basic_auth_for_the_front(site):
    status, _ = curl(f"{SITE_URL}/hydra/whoami")
    assert status == 401


def test_apache_refuses_a_wrong_password(site):
    status, _ = curl("-u", "ada:wrong", f"{SITE_URL}/hydra/whoami")
    assert status == 401


def test_apache_serves_the_front_daemon_through_mod_proxy_fcgi_with_ldap_basic_auth(site):
    status, body = curl("-u", f"ada:{PASSWORD}", f"{SITE_URL}/hydra/whoami")
    assert status == 200
    assert "Signed in as ada" in body
    # One hydra-cgi daemon answers, as the web server's account, on the socket the routes name.
    fronts = sh("pgrep", "-u", "www-data", "-f", f"^{PREFIX}/hydra-cgi --socket /run/hydra/.front/cgi.sock$", check=False)
    assert len(fronts.stdout.split()) == 1, fronts.stdout
    assert "proxy:unix:/run/hydra/.front/cgi.sock|fcgi://localhost" in (REPO / "apache/hydra-routes.conf").read_text()


def test_front_answers_health_without_credentials(site):
    status, body = curl(f"{SITE_URL}/hydra/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


def test_front_pages_escape_what_the_user_sent(site):
    # REMOTE_USER comes from Apache's auth; the page shows it escaped whatever it is.
    env = {"REMOTE_USER": "<script>x</script>", "REQUEST_URI": "/hydra/whoami", "REQUEST_METHOD": "GET"}
    out = sh(PREFIX / "hydra-cgi", env=env, check=False).stdout
    assert out.startswith("Status: 400")
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_sudo_lets_the_web_server_run_ipynb_launch_as_a_hydra_user(site):
    assert sh(PREFIX / "addldapuser", "grace", check=False).returncode in (0, 1)
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["user"] == "grace" and report["socket"] == "/run/hydra/grace/jupyter.sock"


def test_sudo_refuses_the_web_server_anything_else(site):
    assert as_web_server("sudo", "-n", "/bin/true").returncode != 0
    assert as_web_server("sudo", "-n", "-u", "root", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0").returncode != 0
    # Only with the front's short wait for the person's lock: a start that waits longer would
    # keep one of the front's start slots for as long as the person holds their own lock.
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "start", "--json")
    assert result.returncode != 0 and "password is required" in result.stderr
    # Only `start --json --lock-timeout 0`: not a sync from a URL of the web server's choosing into a user's home.
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "sync", "--repo", "/tmp/x", "--dir", "x")
    assert result.returncode != 0 and "password is required" in result.stderr  # sudo -n: no matching rule
    # The admin page's Stop button: `stop --json` as a hydra user, never as root.
    assert as_web_server("sudo", "-n", "-u", "root", PREFIX / "ipynb-launch", "stop", "--json").returncode != 0
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "stop", "--all")
    assert result.returncode != 0 and "password is required" in result.stderr
    # After a visit to a Slurm job: `sync --json` alone (the site's courses), as a hydra user, never as root.
    assert as_web_server("sudo", "-n", "-u", "root", PREFIX / "ipynb-launch", "sync", "--json").returncode != 0
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "sync", "--json", "--dir", "x")
    assert result.returncode != 0 and "password is required" in result.stderr
    assert as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "sync", "--json").returncode == 0
    # --profile: a name, and nothing after it (not a longer lock wait, not another option).
    for profile in (["../x"], ["Research"], ["a", "--lock-timeout", "3600"], ["course", "x"], ["-x"]):
        result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0",
                               "--profile", *profile)
        assert result.returncode != 0 and "password is required" in result.stderr, profile


def test_sudo_lets_the_web_server_ask_for_a_profile_and_ipynb_launch_checks_it(site):
    """Threat: the web server (or a person over ssh) asking for a profile the person's groups do
    not allow. sudo lets the name through; ipynb-launch refuses it (77) and starts nothing."""
    assert sh(PREFIX / "addldapuser", "grace", check=False).returncode in (0, 1)
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0",
                           "--profile", "research")
    assert result.returncode == 77, result.stderr
    assert "is not a profile grace may use" in json.loads(result.stdout)["error"]
    result = as_web_server("sudo", "-n", "-u", "grace", PREFIX / "ipynb-launch", "start", "--json", "--lock-timeout", "0",
                           "--profile", "default")
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["profile"] == "default"
