"""Issue 4: addldapuser, with real slapd and real useradd. Each test names the threat it stops."""
import concurrent.futures
import json
import os
import pathlib
import pwd
import grp
import stat
import time

import pytest

from conftest import PEOPLE, PREFIX, account_files, as_web_server, runtime_dir_gone, sh

ADD = PREFIX / "addldapuser"
CREATED, ALREADY_FINE, INVALID_NAME, LDAP_UNAVAILABLE, ENTRY_UNUSABLE, REFUSED = 0, 1, 65, 69, 76, 77


def add(name, *options):
    return sh(ADD, "--json", *options, "--", name, check=False)


def report(result):
    return json.loads(result.stdout)


def shadow_password(name):
    for line in pathlib.Path("/etc/shadow").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields[1]
    raise AssertionError(f"{name} not in /etc/shadow")


def assert_runtime_dir_ready(name):
    info = os.lstat(f"/run/hydra/{name}")
    assert stat.S_ISDIR(info.st_mode)
    assert info.st_uid == pwd.getpwnam(name).pw_uid
    assert info.st_gid == grp.getgrnam("www-data").gr_gid
    assert stat.S_IMODE(info.st_mode) == 0o2750
    # A tmpfs of its own (server.runtime_dir_size): what the person writes there cannot fill /run.
    assert info.st_dev != os.stat("/run/hydra").st_dev
    assert os.statvfs(f"/run/hydra/{name}").f_blocks * os.statvfs(f"/run/hydra/{name}").f_frsize <= 16 << 20


def test_ldap_user_gets_the_ldap_uid_display_name_locked_password_and_group(site):
    result = add("ada")
    assert result.returncode == CREATED, result.stderr
    r = report(result)
    assert (r["outcome"], r["source"], r["uid"]) == ("created", "ldap", 20001)
    entry = pwd.getpwnam("ada")
    assert (entry.pw_uid, entry.pw_gecos, entry.pw_dir, entry.pw_shell) == (20001, "Ada Lovelace", "/home/ada", "/bin/bash")
    assert shadow_password("ada").startswith("!")  # no password login, ever (Kerberos/ssh or the web)
    assert "ada" in grp.getgrnam("hydra").gr_mem
    assert stat.S_IMODE(os.stat("/home/ada").st_mode) == 0o700  # homes stay private
    assert_runtime_dir_ready("ada")


def test_second_call_is_already_fine_and_changes_nothing(site):
    add("barbara")
    before = account_files()
    result = add("barbara")
    assert result.returncode == ALREADY_FINE
    assert report(result)["outcome"] == "already-fine" and report(result)["actions"] == []
    assert account_files() == before


def test_display_name_cannot_inject_gecos_fields(site):
    assert add("weird").returncode == CREATED
    line = next(l for l in pathlib.Path("/etc/passwd").read_text().splitlines() if l.startswith("weird:"))
    assert len(line.split(":")) == 7
    assert pwd.getpwnam("weird").pw_gecos == "Weird  Name   With Separators"


def test_absent_user_gets_a_local_uid_only_when_fallback_is_on(config):
    result = add("nobodyknows")
    assert result.returncode == CREATED, result.stderr
    r = report(result)
    assert r["source"] == "local" and 70000 <= r["uid"] <= 70100
    # A deleted account's UID is never handed out again.
    sh("userdel", "nobodyknows")
    again = report(add("nobodyknows2"))
    assert again["uid"] > r["uid"]


def test_absent_user_is_refused_when_fallback_is_off(config):
    config(**{"accounts.local_uid_fallback": "false"})
    before = account_files()
    result = add("strangerdanger")
    assert result.returncode == REFUSED
    assert "local_uid_fallback is off" in report(result)["error"]
    assert account_files() == before


def test_ldap_down_fails_closed_instead_of_handing_out_a_local_uid(directory, site):
    directory.stop()
    try:
        before = account_files()
        result = add("linus")
        assert result.returncode == LDAP_UNAVAILABLE, result.stderr
        assert "LDAP unavailable" in report(result)["error"]
        assert account_files() == before
    finally:
        directory.start()


def test_ldap_frozen_fails_closed_within_the_timeout(directory, site):
    directory.freeze()
    try:
        before = account_files()
        started = time.monotonic()
        result = add("linus")
        elapsed = time.monotonic() - started
        assert result.returncode == LDAP_UNAVAILABLE, result.stderr
        assert elapsed < 2 * 2 + 1.5, elapsed  # timeout_seconds = 2, for connect+search at most
        assert account_files() == before
    finally:
        directory.thaw()


@pytest.mark.parametrize("name,reason", [("twin", "2 entries"), ("nonumber", "has no uidNumber")])
def test_unusable_ldap_entry_creates_nothing(site, name, reason):
    before = account_files()
    result = add(name)
    assert result.returncode == ENTRY_UNUSABLE, result.stderr
    assert reason in report(result)["error"] or "more than one entry" in report(result)["error"]
    assert account_files() == before


@pytest.mark.parametrize("name", ["rootish", "sysish"])
def test_directory_cannot_hand_out_root_or_a_system_uid(site, name):
    before = account_files()
    result = add(name)
    assert result.returncode == REFUSED
    assert account_files() == before


def test_ldap_uid_already_owned_by_another_local_account_is_refused_naming_both(site):
    before = account_files()
    result = add("clash")
    assert result.returncode == REFUSED
    error = report(result)["error"]
    assert "clash" in error and "localclash" in error and "20900" in error
    assert account_files() == before


def test_existing_privileged_account_is_never_added_to_the_hydra_group(site):
    sh("useradd", "--uid", "3000", "--groups", "sudo", "--no-log-init", "opsadmin")
    before = account_files()
    result = add("opsadmin")
    assert result.returncode == REFUSED
    assert "sudo" in report(result)["error"]
    assert account_files() == before


def test_existing_account_confirmed_by_the_directory_is_added_to_the_group(site):
    sh("useradd", "--uid", "20050", "--no-log-init", "localfirst")
    result = add("localfirst")
    assert result.returncode == ALREADY_FINE, result.stderr
    assert "localfirst" in grp.getgrnam("hydra").gr_mem
    assert_runtime_dir_ready("localfirst")


def test_local_login_of_the_same_name_is_not_handed_to_whoever_signs_in_as_it(site):
    """Check 8: a local account hydra did not create, unknown to the directory, is refused."""
    sh("useradd", "--uid", "4000", "--no-log-init", "deploy")
    before = account_files()
    result = add("deploy")
    assert result.returncode == REFUSED
    assert "check 8" in report(result)["error"]
    assert account_files() == before


def test_local_account_whose_uid_differs_from_the_directory_is_refused(site):
    sh("useradd", "--uid", "4001", "--no-log-init", "mismatch")
    before = account_files()
    result = add("mismatch")
    assert result.returncode == REFUSED
    assert "4001" in report(result)["error"] and "20051" in report(result)["error"]
    assert account_files() == before


def test_planted_symlink_for_the_runtime_dir_is_replaced_not_followed(site):
    add("ken")
    runtime_dir_gone("ken")
    os.symlink("/etc", "/run/hydra/ken")
    etc_before = os.stat("/etc")
    assert add("ken").returncode == ALREADY_FINE
    assert_runtime_dir_ready("ken")
    etc_after = os.stat("/etc")
    assert (etc_after.st_uid, etc_after.st_mode) == (etc_before.st_uid, etc_before.st_mode)


def test_runtime_dir_gone_after_a_reboot_is_prepared_again_and_not_reported_as_tampering(site):
    add("barbara")
    runtime_dir_gone("barbara")
    r = report(add("barbara"))
    assert r["repairs"] == [], r
    assert any("mounted" in a for a in r["actions"]), r
    assert_runtime_dir_ready("barbara")


def test_runtime_dir_with_wrong_owner_and_mode_is_repaired(site):
    add("grace")
    os.chown("/run/hydra/grace", 0, 0)
    os.chmod("/run/hydra/grace", 0o777)
    r = report(add("grace"))
    assert any("mode 2750" in a for a in r["repairs"])
    assert_runtime_dir_ready("grace")


def test_dry_run_changes_nothing(site):
    before = account_files()
    result = add("herd29", "--dry-run")
    assert result.returncode == CREATED
    r = report(result)
    assert r["dry_run"] is True and any("create account herd29 with UID 21029" in a for a in r["actions"])
    assert account_files() == before
    assert not os.path.exists("/run/hydra/herd29")


def test_refuses_to_run_as_an_ordinary_user(site):
    before = account_files()
    result = as_web_server(ADD, "herd28")
    assert result.returncode == REFUSED
    assert account_files() == before


HOSTILE_NAMES = [
    "", " ", "a b", "ada;id", "ada|id", "ada&&id", "$(id)", "`id`", "ada'", 'ada"', "ada\\", "ada\n", "\nada",
    "ada\r", "ada\t", "*", "*)(uid=*", "ada)(|(uid=*", "(uid=*)", "ada*", "../x", "../../etc/passwd", "a/b", ".", "..",
    "-oProxyCommand=id", "-ada", "--help", "--config=/tmp/x", "Ada", "ADA", "ada$", "a" * 33, "x" * 200,
    "аda",  # Cyrillic а
    "adа",  # Cyrillic а at the end
    "ａda",  # fullwidth a
    "ada\u200b",  # zero-width space
    "ǎda", "1ada", "_ada", "ada@EXAMPLE.ORG", "ada,ou=people", "ada=1", "%61da", "ada%00", "ada.", "a.d.a",
]
EXISTING_SYSTEM_ACCOUNTS = ["root", "www-data", "nobody", "daemon", "bin", "sys", "mail", "openldap", "_apt"]


def test_hostile_names_are_refused_before_ldap_and_change_nothing(directory, site):
    """Shell, LDAP filter and path metacharacters, options, look-alikes: each refused, with
    LDAP frozen to prove no query is made (a query would hang until the timeout)."""
    assert len(HOSTILE_NAMES) + len(EXISTING_SYSTEM_ACCOUNTS) >= 40
    before = account_files()
    directory.freeze()
    try:
        for name in HOSTILE_NAMES + EXISTING_SYSTEM_ACCOUNTS:
            started = time.monotonic()
            result = sh(ADD, "--", name, check=False)
            assert result.returncode in (INVALID_NAME, REFUSED), (name, result.returncode, result.stderr)
            assert time.monotonic() - started < 1.5, name
    finally:
        directory.thaw()
    assert account_files() == before
    members = grp.getgrnam("hydra").gr_mem
    assert not set(members) & set(EXISTING_SYSTEM_ACCOUNTS)


def test_hostile_names_through_sudo_as_the_web_server(site):
    before = account_files()
    for name in ["root", "www-data", "-oProxyCommand=id", "*)(uid=*", "ada;id"]:
        result = as_web_server("sudo", "-n", ADD, "--json", "--", name)
        assert result.returncode in (INVALID_NAME, REFUSED), (name, result.stderr)
    assert account_files() == before


def test_environment_cannot_be_smuggled_through_sudo(site):
    result = as_web_server("sudo", "-n", "LD_PRELOAD=/tmp/evil.so", ADD, "--json", "--", "herd27")
    assert result.returncode != 0 and "not allowed to set" in result.stderr
    result = as_web_server("env", "PATH=/tmp/evil:/usr/bin", "sudo", "-n", "--preserve-env=PATH", ADD, "--json", "--", "herd27")
    assert result.returncode != 0 and "not allowed to" in result.stderr
    assert "herd27" not in pathlib.Path("/etc/passwd").read_text()


def test_twenty_simultaneous_calls_for_one_new_name_create_exactly_one_account(site):
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: add("herd00").returncode, range(20)))
    assert sorted(codes) == [CREATED] + [ALREADY_FINE] * 19
    passwd = pathlib.Path("/etc/passwd").read_text()
    assert passwd.count("\nherd00:") == 1


def test_twenty_simultaneous_calls_for_different_names_keep_the_databases_consistent(site):
    names = [f"herd{i:02d}" for i in range(1, 21)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda n: add(n).returncode, names))
    assert codes == [CREATED] * 20
    for name in names:
        assert pwd.getpwnam(name).pw_uid == PEOPLE[name][0]
        assert name in grp.getgrnam("hydra").gr_mem
    assert sh("pwck", "-r", check=False).returncode in (0, 2), "pwck found a broken entry"  # 2: a missing home of a system account
    assert sh("grpck", "-r", check=False).returncode == 0
