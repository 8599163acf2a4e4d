"""Issue 3: a broken or hostile /etc/hydra/hydra.toml gives a message naming the file, the line
and the key, exit status 78, and changes nothing."""
import os
import pathlib

import pytest

from conftest import PREFIX, account_files, as_web_server, config_text, sh  # noqa: F401

CONFIG_EXIT = 78


def run_with(path):
    return sh(PREFIX / "addldapuser", "--config", path, "--dry-run", "ada", check=False)


def write(name, text, mode=0o644, owner=None):
    d = pathlib.Path("/etc/hydra-config-tests")
    d.mkdir(mode=0o755, exist_ok=True)
    p = d / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.chmod(p, mode)
    if owner is not None:
        os.chown(p, owner, owner)
    return p


GOOD = config_text()

CASES = {
    # name: (file content, what the message must say)
    "syntax": ("[site]\npublic_url = \"http://x\n", [":2:", "not valid TOML"]),
    "unknown_key": (GOOD + "[server]\nidle_timeout_minutess = 5\n", [":", "unknown key 'server.idle_timeout_minutess'"]),
    "wrong_type": (GOOD.replace("timeout_seconds = 2", 'timeout_seconds = "2"'), ["'ldap.timeout_seconds' must be an integer, not a string"]),
    "out_of_range": (GOOD.replace("timeout_seconds = 2", "timeout_seconds = 100000"), ["'ldap.timeout_seconds'", "out of range"]),
    "ldap_scheme": (GOOD.replace('uri = "ldap://', 'uri = "http://'), ["'ldap.uri'", "must start with ldap://"]),
    "missing_public_url": (GOOD.replace('public_url = "http://localhost"', ""), ["'site.public_url' is missing"]),
    "public_url_with_path": (GOOD.replace('"http://localhost"', '"http://localhost/x?y"'), ["'site.public_url'", "must be an origin"]),
    "inverted_uid_range": (GOOD.replace("[accounts]\n", "[accounts]\nuid_min = 50000\nuid_max = 40000\n"),
                           ["'accounts.uid_max'", "must not be below uid_min"]),
    "course_escapes_home": (GOOD + '[[courses]]\nrepo = "/srv/x.git"\nfolder = "../../etc"\n', ["'courses[1].folder'", "without '..'"]),
    "branch_is_an_option": (GOOD + '[[courses]]\nrepo = "/srv/x.git"\nbranch = "--upload-pack=evil"\nfolder = "t"\n', ["'courses[1].branch'", "not a valid git branch"]),
    "bad_name_pattern": (GOOD.replace("[accounts]\n", "[accounts]\nname_pattern = \"([a-z\"\n"), ["'accounts.name_pattern'", "not a valid regular expression"]),
    "not_utf8": (b"[site]\npublic_url = \"http://\xff\"\n", ["not UTF-8"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_config_is_refused_with_file_line_and_key(site, case):
    text, expected = CASES[case]
    path = write(f"{case}.toml", text)
    before = account_files()
    result = run_with(path)
    assert result.returncode == CONFIG_EXIT, result.stderr
    assert str(path) in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert account_files() == before


def test_missing_config_file_is_named(site):
    result = run_with("/etc/hydra-config-tests/nonexistent.toml")
    assert result.returncode == CONFIG_EXIT
    assert "/etc/hydra-config-tests/nonexistent.toml: the configuration file does not exist" in result.stderr


def test_world_writable_config_is_not_trusted(site):
    path = write("writable.toml", GOOD, mode=0o666)
    result = run_with(path)
    assert result.returncode == CONFIG_EXIT
    assert "writable by group or others" in result.stderr


def test_config_owned_by_a_user_is_not_trusted(site):
    path = write("owned.toml", GOOD, owner=20900)
    result = run_with(path)
    assert result.returncode == CONFIG_EXIT
    assert "owned by UID 20900, not root" in result.stderr


def test_config_symlink_planted_by_anyone_is_not_followed(site):
    target = write("target.toml", GOOD)
    link = pathlib.Path("/etc/hydra-config-tests/link.toml")
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    result = run_with(link)
    assert result.returncode == CONFIG_EXIT
    assert "symbolic link" in result.stderr


def test_config_in_a_world_writable_directory_is_not_trusted(site):
    path = pathlib.Path("/tmp/hydra-config-in-tmp.toml")
    path.write_text(GOOD)
    os.chmod(path, 0o644)
    result = run_with(path)
    assert result.returncode == CONFIG_EXIT
    assert "tmp is writable by group or others" in result.stderr


def test_web_server_cannot_choose_the_config_through_sudo(site):
    path = write("attacker.toml", GOOD.replace("local_uid_fallback = true", "local_uid_fallback = true\nuid_min = 1"))
    before = account_files()
    # sudoers allows the web server only `addldapuser --json -- NAME`: --config never gets through.
    result = as_web_server("sudo", "-n", PREFIX / "addldapuser", "--config", path, "linus")
    assert result.returncode != 0 and "password is required" in result.stderr  # sudo -n: no matching rule
    # Smuggled after "--", it is a second name: a usage error.
    result = as_web_server("sudo", "-n", PREFIX / "addldapuser", "--json", "--", "linus", "--config", path)
    assert result.returncode == 64
    # And run as root through sudo, the helper itself refuses to read another file.
    result = sh("sudo", "-n", PREFIX / "addldapuser", "--config", path, "linus", check=False)
    assert result.returncode == CONFIG_EXIT and "--config cannot be used through sudo" in result.stderr
    assert account_files() == before
