"""Tutorial sync: `ipynb-launch sync` as a real user, with real git, against real upstreams.

The rule under test: a folder follows a repository's branch, and
- a file the user never changed follows upstream (updated, added, removed with it);
- a file the user changed or created stays byte-identical; when upstream changed it too, its
  version arrives beside it as NAME.upstream.EXT, never merged, never renamed away;
- a file the user deleted comes back (unless sync.restore_deleted = false).
Each test names the threat (or the behaviour) it proves. Every sync made here is followed by the
same checks on the whole folder: no conflict markers anywhere, every notebook valid JSON with
nbformat 4, and the JSON report's lists exactly as expected. Each scenario ends with "the next
sync works": one more sync that succeeds and changes nothing.

Isolation: every test has its own upstream (/srv/hydra-test/sync-*.git) and its own folder, and
mostly its own user (herd10..herd29, linus, barbara, ken are the names this file may use).
"""
import hashlib
import json
import os
import pathlib
import pwd
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PREFIX, UPSTREAM, Upstream, as_user, as_web_server, notebook, refresh_mirrors, sh

LAUNCH = PREFIX / "ipynb-launch"
DONE, USAGE, TEMPORARY = 0, 64, 75
SRV = pathlib.Path("/srv/hydra-test")
MIRRORS = pathlib.Path("/var/cache/hydra/mirrors")
LIST_FIELDS = ("updated", "added", "removed", "kept", "upstream_copies", "restored", "blocked")
MARKER = b"<<<<<<<"


# ---------------------------------------------------------------------------------------------
# Helpers: users, upstreams, the user's own edits, syncing, and the checks made after each sync.
# ---------------------------------------------------------------------------------------------

def nb(text):
    """A valid notebook's bytes."""
    return notebook(text).encode()


COURSE = {  # a small course: a notebook, a plain file, a file in a subfolder
    "README.md": b"# Course\n",
    "lesson1.ipynb": nb("lesson one"),
    "data/numbers.csv": b"1,2,3\n",
}


def ensure_user(name):
    result = sh(PREFIX / "addldapuser", name, check=False)
    assert result.returncode in (0, 1), result.stderr
    return name


def home(user):
    return pathlib.Path(pwd.getpwnam(user).pw_dir)


def git_dir(user, folder):
    """hydra's own git directory for a folder (TutorialSync.gitDir)."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in folder)
    return home(user) / ".hydra" / "sync" / f"{name}.git"


def make_upstream(name, files=COURSE):
    """A fresh upstream of this test's own, branch main."""
    return Upstream(SRV / f"sync-{name}.git").create(files)


def head(up, branch="main"):
    return sh("git", "--git-dir", up.path, "rev-parse", f"refs/heads/{branch}").stdout.strip()


def force_push(up, branch="main"):
    """Pushes the work tree's HEAD over the branch, rewriting upstream's history."""
    up.git("push", "-q", "--force", str(up.path), f"HEAD:refs/heads/{branch}")
    sh("chmod", "-R", "a+rX", up.path)
    return head(up, branch)


def user_ids(user):
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def user_write(user, path, content):
    """The user edits or creates a file (parents created as theirs too)."""
    path = pathlib.Path(path)
    uid, gid = user_ids(user)
    missing = []
    parent = path.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir()
        os.chown(directory, uid, gid)
    assert not path.is_symlink(), path
    path.write_bytes(content)
    os.chown(path, uid, gid)


def user_symlink(user, target, link):
    os.symlink(target, link)
    os.lchown(link, *user_ids(user))


def snapshot(folder):
    """Everything in a folder, by relative path: file bytes, link targets, directories."""
    folder = pathlib.Path(folder)
    result = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = pathlib.Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                result[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                result[rel] = ("dir",)
            else:
                result[rel] = ("file", path.read_bytes())
    return result


def assert_sound(folder):
    """No conflict markers in any file, every notebook valid JSON with nbformat 4."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        return
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]  # a user's own repository: compressed objects
        for name in files:
            path = pathlib.Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            assert MARKER not in data, f"conflict marker in {path}"
            if name.endswith(".ipynb"):
                parsed = json.loads(data)
                assert parsed["nbformat"] == 4, path


def run_sync(user, *args, timeout=300):
    """`ipynb-launch sync --json ARGS` as the user: (CompletedProcess, list of reports)."""
    result = as_user(user, LAUNCH, "sync", "--json", *args, timeout=timeout)
    try:
        reports = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from sync (exit {result.returncode})\nstdout: {result.stdout}\nstderr: {result.stderr}")
    return result, reports


def sync_folder(user, repo, folder, branch="main", expect=DONE, timeout=300):
    """The one-off `sync --repo R --branch B --dir F`: its one report, checked for soundness."""
    result, reports = run_sync(user, "--repo", str(repo), "--branch", branch, "--dir", folder, timeout=timeout)
    assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
    assert isinstance(reports, list) and len(reports) == 1, reports
    report = reports[0]
    assert report["folder"] == folder and report["branch"] == branch
    if expect == DONE:
        assert report.get("error") is None, report
    else:
        assert report.get("error"), report
    assert_sound(home(user) / folder)
    return report


def sync_courses(user, expect=DONE):
    """The configured courses' sync (what `start` does too): the reports, checked for soundness."""
    result, reports = run_sync(user)
    assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
    assert isinstance(reports, list), reports
    for report in reports:
        assert (report.get("error") is None) == (expect == DONE), report
        assert_sound(home(user) / report["folder"])
    return reports


def assert_lists(report, **expected):
    """Every list of the report is exactly what is given (the ones not given are empty)."""
    for field in LIST_FIELDS:
        assert sorted(report[field]) == sorted(expected.get(field, [])), (field, report)


def assert_next_sync_changes_nothing(user, folder, repo=None, branch="main", **lists):
    """The next sync works: it succeeds and leaves the folder exactly as it was."""
    before = snapshot(home(user) / folder)
    if repo is None:
        reports = sync_courses(user)
        report = next(r for r in reports if r["folder"] == folder)
    else:
        report = sync_folder(user, repo, folder, branch)
    assert_lists(report, **lists)
    assert snapshot(home(user) / folder) == before


def assert_files(folder, expected):
    """The folder's files with exactly these bytes (others may exist)."""
    for rel, content in expected.items():
        path = pathlib.Path(folder) / rel
        assert not path.is_symlink() and path.is_file(), path
        assert path.read_bytes() == content, rel


def configure_course(config, up, folder, branch="main", **overrides):
    """One configured course, its mirror refreshed on every call (fetch interval 0)."""
    config(courses=((str(up.path), branch, folder),), **{"sync.fetch_interval_seconds": "0", **overrides})
    return refresh_mirrors()


def mirror_path(repo):
    """<mirror_dir>/<first 16 hex digits of the git blob id of the URL>.git (Mirror.path)."""
    data = str(repo).encode()
    return MIRRORS / (hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()[:16] + ".git")


# ---------------------------------------------------------------------------------------------
# The rule: untouched files follow upstream, the user's files stay, deleted files come back.
# ---------------------------------------------------------------------------------------------

def test_first_configured_sync_delivers_the_course_from_the_mirror(site):
    """The site's course, through the web server's mirror: notebook, plain file, subfolder file."""
    user = ensure_user("herd10")
    assert refresh_mirrors().returncode == 0
    assert (mirror_path(UPSTREAM) / "HEAD").exists()
    reports = sync_courses(user)
    assert [r["folder"] for r in reports] == ["tutorials"]
    report = reports[0]
    assert report["repo"] == str(mirror_path(UPSTREAM))  # read from the mirror, not from upstream
    commit = report["commit"]
    paths = sh("git", "--git-dir", UPSTREAM, "ls-tree", "-r", "--name-only", commit).stdout.split()
    assert sorted(paths) == ["README.md", "data/numbers.csv", "lesson1.ipynb"]
    assert_lists(report, added=paths)
    folder = home(user) / "tutorials"
    for rel in paths:
        upstream_bytes = subprocess.run(["git", "--git-dir", str(UPSTREAM), "show", f"{commit}:{rel}"],
                                        capture_output=True, check=True).stdout
        assert (folder / rel).read_bytes() == upstream_bytes
    assert os.stat(folder / "lesson1.ipynb").st_uid == user_ids(user)[0]  # the user's own files
    assert_next_sync_changes_nothing(user, "tutorials")


def test_untouched_files_follow_upstream_updates_additions_and_removals(site):
    user = ensure_user("herd11")
    up = make_upstream("follow", {**COURSE, "old.txt": b"to be removed\n", "data/old.bin": bytes(range(256))})
    report = sync_folder(user, up.path, "follow")
    assert_lists(report, added=[*COURSE, "old.txt", "data/old.bin"])
    assert report["commit"] == head(up)

    new = {"README.md": b"# Course, second edition\n", "lesson1.ipynb": nb("lesson one, revised"),
           "data/numbers.csv": b"4,5,6\n", "lesson2.ipynb": nb("lesson two"), "data/more/deep.bin": b"\0\1\2\xff"}
    commit = up.commit(new, remove=["old.txt", "data/old.bin"])
    report = sync_folder(user, up.path, "follow")
    assert report["commit"] == commit
    assert_lists(report, updated=["README.md", "lesson1.ipynb", "data/numbers.csv"],
                 added=["lesson2.ipynb", "data/more/deep.bin"], removed=["old.txt", "data/old.bin"])
    folder = home(user) / "follow"
    assert_files(folder, new)
    assert not (folder / "old.txt").exists() and not (folder / "data/old.bin").exists()
    assert not list(folder.rglob("*.upstream*"))
    assert_next_sync_changes_nothing(user, "follow", up.path)


def test_edited_files_stay_byte_identical_and_upstream_versions_arrive_beside_them(config):
    """Configured course through the mirror: an edited notebook, an edited plain file in a
    subfolder and an edited file without extension; upstream changes all of them."""
    user = ensure_user("herd12")
    up = make_upstream("edited", {**COURSE, "Makefile": b"all:\n\ttrue\n"})
    assert configure_course(config, up, "edited").returncode == 0
    assert_lists(sync_courses(user)[0], added=[*COURSE, "Makefile"])

    folder = home(user) / "edited"
    mine = {"lesson1.ipynb": nb("my answers to lesson one"), "data/numbers.csv": b"1,2,3\n42\n",
            "Makefile": b"all:\n\techo mine\n"}
    for rel, content in mine.items():
        user_write(user, folder / rel, content)
    theirs = {"README.md": b"# Course v2\n", "lesson1.ipynb": nb("lesson one v2"),
              "data/numbers.csv": b"1,2,3,4\n", "Makefile": b"all:\n\tmake it\n"}
    commit = up.commit(theirs)
    assert refresh_mirrors().returncode == 0
    report = sync_courses(user)[0]
    assert report["commit"] == commit
    assert_lists(report, updated=["README.md"], kept=list(mine),
                 upstream_copies=["lesson1.upstream.ipynb", "data/numbers.upstream.csv", "Makefile.upstream"])
    assert_files(folder, mine)
    assert_files(folder, {"README.md": theirs["README.md"], "lesson1.upstream.ipynb": theirs["lesson1.ipynb"],
                          "data/numbers.upstream.csv": theirs["data/numbers.csv"], "Makefile.upstream": theirs["Makefile"]})
    assert_next_sync_changes_nothing(user, "edited")


def test_edited_file_gets_no_copy_until_upstream_changes_it_and_then_the_newest_copy(site):
    user = ensure_user("herd13")
    up = make_upstream("copies")
    sync_folder(user, up.path, "copies")
    folder = home(user) / "copies"
    mine = nb("my own lesson one")
    user_write(user, folder / "lesson1.ipynb", mine)

    # Upstream changes another file only: the edit is not even reported, no copy appears.
    up.commit({"README.md": b"# Course v2\n"})
    assert_lists(sync_folder(user, up.path, "copies"), updated=["README.md"])
    assert not (folder / "lesson1.upstream.ipynb").exists()

    # Upstream changes it, twice: the copy always holds upstream's newest version.
    for version in ("v2", "v3"):
        up.commit({"lesson1.ipynb": nb(f"lesson one {version}")})
        report = sync_folder(user, up.path, "copies")
        assert_lists(report, kept=["lesson1.ipynb"], upstream_copies=["lesson1.upstream.ipynb"])
        assert_files(folder, {"lesson1.ipynb": mine, "lesson1.upstream.ipynb": nb(f"lesson one {version}")})

    # The user takes upstream's version: the file is hydra's again and follows upstream.
    user_write(user, folder / "lesson1.ipynb", nb("lesson one v3"))
    up.commit({"lesson1.ipynb": nb("lesson one v4")})
    assert_lists(sync_folder(user, up.path, "copies"), updated=["lesson1.ipynb"])
    assert_files(folder, {"lesson1.ipynb": nb("lesson one v4")})
    assert_next_sync_changes_nothing(user, "copies", up.path)


def test_deleted_files_come_back_by_default_with_upstream_news(site):
    user = ensure_user("herd14")
    up = make_upstream("restore")
    sync_folder(user, up.path, "restore")
    folder = home(user) / "restore"

    # Nothing new upstream: the deleted notebook and the whole deleted subfolder come back.
    (folder / "lesson1.ipynb").unlink()
    sh("rm", "-r", folder / "data")
    report = sync_folder(user, up.path, "restore")
    assert_lists(report, restored=["lesson1.ipynb", "data/numbers.csv"])
    assert_files(folder, COURSE)

    # Deleted while upstream changed it: it comes back at upstream's new version.
    (folder / "README.md").unlink()
    up.commit({"README.md": b"# Course v2\n"})
    report = sync_folder(user, up.path, "restore")
    assert_lists(report, restored=["README.md"])
    assert_files(folder, {"README.md": b"# Course v2\n"})
    assert_next_sync_changes_nothing(user, "restore", up.path)


def test_deleted_files_stay_deleted_when_restore_deleted_is_false(config):
    config(**{"sync.restore_deleted": "false"})
    user = ensure_user("herd15")
    up = make_upstream("norestore")
    sync_folder(user, up.path, "norestore")
    folder = home(user) / "norestore"
    (folder / "lesson1.ipynb").unlink()
    sh("rm", "-r", folder / "data")

    assert_lists(sync_folder(user, up.path, "norestore"))
    assert not (folder / "lesson1.ipynb").exists() and not (folder / "data").exists()

    # Upstream changes a deleted file and a kept one: only the one still there follows.
    up.commit({"lesson1.ipynb": nb("lesson one v2"), "README.md": b"# v2\n"})
    assert_lists(sync_folder(user, up.path, "norestore"), updated=["README.md"])
    assert not (folder / "lesson1.ipynb").exists()
    assert not (folder / "data").exists(), f"the deleted folder came back, holding {os.listdir(folder / 'data')}"
    assert_files(folder, {"README.md": b"# v2\n"})
    assert_next_sync_changes_nothing(user, "norestore", up.path)


def test_untracked_user_files_named_like_new_upstream_files_are_kept(site):
    """Before the first sync and later: the user's own files, named with spaces, non-ASCII
    letters and in a non-ASCII folder, where upstream then adds files of the same name."""
    user = ensure_user("herd21")
    up = make_upstream("untracked")
    folder = home(user) / "untracked"
    early = b"# my README, written before any sync\n"
    user_write(user, folder / "README.md", early)
    report = sync_folder(user, up.path, "untracked")
    assert_lists(report, added=["lesson1.ipynb", "data/numbers.csv"], kept=["README.md"],
                 upstream_copies=["README.upstream.md"])
    assert_files(folder, {"README.md": early, "README.upstream.md": COURSE["README.md"]})

    mine = {"my notes.md": b"mine\n", "\u00dcbung \u00e4\u00df.ipynb": nb("meine L\u00f6sung"),
            "\u6570\u636e/\u8868 1.csv": b"7,8\n", "same.txt": b"identical\n", "only mine.txt": b"x\n"}
    for rel, content in mine.items():
        user_write(user, folder / rel, content)
    theirs = {"my notes.md": b"upstream notes\n", "\u00dcbung \u00e4\u00df.ipynb": nb("Aufgabe"),
              "\u6570\u636e/\u8868 1.csv": b"1,1\n", "same.txt": b"identical\n"}
    up.commit(theirs)
    report = sync_folder(user, up.path, "untracked")
    assert_lists(report, kept=["my notes.md", "\u00dcbung \u00e4\u00df.ipynb", "\u6570\u636e/\u8868 1.csv"],
                 upstream_copies=["my notes.upstream.md", "\u00dcbung \u00e4\u00df.upstream.ipynb",
                                  "\u6570\u636e/\u8868 1.upstream.csv"])
    assert_files(folder, mine)
    assert_files(folder, {"my notes.upstream.md": theirs["my notes.md"],
                          "\u00dcbung \u00e4\u00df.upstream.ipynb": theirs["\u00dcbung \u00e4\u00df.ipynb"],
                          "\u6570\u636e/\u8868 1.upstream.csv": theirs["\u6570\u636e/\u8868 1.csv"]})
    assert not (folder / "same.upstream.txt").exists()
    assert_next_sync_changes_nothing(user, "untracked", up.path)


def test_upstream_renaming_an_edited_file_keeps_the_users_file_and_adds_the_new_name(site):
    user = ensure_user("herd22")
    up = make_upstream("rename")
    sync_folder(user, up.path, "rename")
    folder = home(user) / "rename"
    mine = nb("my work in lesson one")
    user_write(user, folder / "lesson1.ipynb", mine)

    up.git("mv", "lesson1.ipynb", "lesson01.ipynb")
    (up.work / "docs").mkdir()
    up.git("mv", "README.md", "docs/README.md")
    up.commit({"lesson01.ipynb": nb("lesson one, renamed and revised")})
    report = sync_folder(user, up.path, "rename")
    assert_lists(report, added=["lesson01.ipynb", "docs/README.md"], removed=["README.md"])
    assert_files(folder, {"lesson1.ipynb": mine, "lesson01.ipynb": nb("lesson one, renamed and revised"),
                          "docs/README.md": COURSE["README.md"]})
    assert not (folder / "README.md").exists()
    assert not (folder / "lesson1.upstream.ipynb").exists()
    assert_next_sync_changes_nothing(user, "rename", up.path)


# ---------------------------------------------------------------------------------------------
# Upstream history and branches.
# ---------------------------------------------------------------------------------------------

def test_squashed_force_push_keeps_edits_and_untouched_files_follow(site):
    user = ensure_user("herd16")
    up = make_upstream("squash")
    root = up.git("rev-parse", "HEAD").stdout.strip()
    up.commit({"lesson2.ipynb": nb("lesson two")})
    up.commit({"extra.txt": b"extra\n"})
    sync_folder(user, up.path, "squash")
    folder = home(user) / "squash"
    mine = nb("my lesson one")
    user_write(user, folder / "lesson1.ipynb", mine)

    # The teacher squashes everything into one new commit with changes, and force-pushes.
    (up.work / "README.md").write_bytes(b"# Squashed\n")
    (up.work / "lesson1.ipynb").write_bytes(nb("lesson one, squashed"))
    (up.work / "fresh.md").write_bytes(b"fresh\n")
    up.git("rm", "-q", "--", "data/numbers.csv", "extra.txt")
    up.git("add", "-A")
    up.git("reset", "--soft", root)
    up.git("commit", "-q", "--amend", "-m", "squashed")
    commit = force_push(up)
    assert sh("git", "--git-dir", up.path, "rev-list", "--count", commit).stdout.strip() == "1"

    report = sync_folder(user, up.path, "squash")
    assert report["commit"] == commit
    assert_lists(report, updated=["README.md"], added=["fresh.md"], removed=["data/numbers.csv", "extra.txt"],
                 kept=["lesson1.ipynb"], upstream_copies=["lesson1.upstream.ipynb"])
    assert_files(folder, {"lesson1.ipynb": mine, "lesson1.upstream.ipynb": nb("lesson one, squashed"),
                          "README.md": b"# Squashed\n", "lesson2.ipynb": nb("lesson two"), "fresh.md": b"fresh\n"})
    assert not (folder / "extra.txt").exists() and not (folder / "data/numbers.csv").exists()
    assert_next_sync_changes_nothing(user, "squash", up.path)


def test_force_push_back_to_an_older_commit_keeps_edits_and_untouched_files_follow(site):
    user = ensure_user("herd17")
    up = make_upstream("rewind")
    old = head(up)
    up.commit({"README.md": b"# v2\n", "lesson1.ipynb": nb("lesson one v2"), "lesson2.ipynb": nb("lesson two")})
    sync_folder(user, up.path, "rewind")
    folder = home(user) / "rewind"
    mine = nb("my lesson one")
    user_write(user, folder / "lesson1.ipynb", mine)

    up.git("reset", "-q", "--hard", old)
    assert force_push(up) == old
    report = sync_folder(user, up.path, "rewind")
    assert report["commit"] == old
    assert_lists(report, updated=["README.md"], removed=["lesson2.ipynb"], kept=["lesson1.ipynb"],
                 upstream_copies=["lesson1.upstream.ipynb"])
    assert_files(folder, {"README.md": COURSE["README.md"], "lesson1.ipynb": mine,
                          "lesson1.upstream.ipynb": COURSE["lesson1.ipynb"]})
    assert not (folder / "lesson2.ipynb").exists()
    assert_next_sync_changes_nothing(user, "rewind", up.path)


def test_configured_branch_change_moves_untouched_files_and_keeps_edits(config):
    user = ensure_user("herd18")
    up = make_upstream("branchchange")
    assert configure_course(config, up, "branchy").returncode == 0
    sync_courses(user)
    folder = home(user) / "branchy"
    mine = b"1,2,3\nmine\n"
    user_write(user, folder / "data/numbers.csv", mine)

    up.git("checkout", "-q", "-b", "v2")
    commit = up.commit({"README.md": b"# v2 branch\n", "data/numbers.csv": b"9,9\n", "v2.ipynb": nb("only on v2")},
                       remove=["lesson1.ipynb"])
    assert head(up, "main") != commit
    assert configure_course(config, up, "branchy", branch="v2").returncode == 0
    report = sync_courses(user)[0]
    assert (report["branch"], report["commit"]) == ("v2", commit)
    assert_lists(report, updated=["README.md"], added=["v2.ipynb"], removed=["lesson1.ipynb"],
                 kept=["data/numbers.csv"], upstream_copies=["data/numbers.upstream.csv"])
    assert_files(folder, {"data/numbers.csv": mine, "data/numbers.upstream.csv": b"9,9\n",
                          "README.md": b"# v2 branch\n", "v2.ipynb": nb("only on v2")})
    assert not (folder / "lesson1.ipynb").exists()
    assert_next_sync_changes_nothing(user, "branchy")


def test_branch_renamed_upstream_reports_an_error_keeps_files_then_the_new_name_works(config):
    user = ensure_user("herd19")
    up = make_upstream("renamedbranch")
    assert configure_course(config, up, "renamed").returncode == 0
    sync_courses(user)
    folder = home(user) / "renamed"
    mine = nb("mine")
    user_write(user, folder / "lesson1.ipynb", mine)

    up.git("branch", "-m", "main", "trunk")
    up.commit({"README.md": b"# on trunk\n", "lesson1.ipynb": nb("lesson one on trunk")})
    sh("git", "--git-dir", up.path, "symbolic-ref", "HEAD", "refs/heads/trunk")
    sh("git", "--git-dir", up.path, "update-ref", "-d", "refs/heads/main")
    before = snapshot(folder)
    refresh_mirrors()
    report = sync_courses(user, expect=TEMPORARY)[0]
    assert "main" in report["error"]
    assert_lists(report)
    assert snapshot(folder) == before

    assert configure_course(config, up, "renamed", branch="trunk").returncode == 0
    report = sync_courses(user)[0]
    assert report["commit"] == head(up, "trunk")
    assert_lists(report, updated=["README.md"], kept=["lesson1.ipynb"], upstream_copies=["lesson1.upstream.ipynb"])
    assert_files(folder, {"lesson1.ipynb": mine, "README.md": b"# on trunk\n",
                          "lesson1.upstream.ipynb": nb("lesson one on trunk")})
    assert_next_sync_changes_nothing(user, "renamed")


def test_branch_deleted_upstream_reports_an_error_and_keeps_every_file(site):
    user = ensure_user("herd20")
    up = make_upstream("deletedbranch")
    up.git("checkout", "-q", "-b", "feature")
    up.commit({"feature.ipynb": nb("feature lesson")})
    sync_folder(user, up.path, "feature", branch="feature")
    folder = home(user) / "feature"
    user_write(user, folder / "feature.ipynb", nb("my feature work"))
    before = snapshot(folder)

    sh("git", "--git-dir", up.path, "update-ref", "-d", "refs/heads/feature")
    for _ in range(2):
        report = sync_folder(user, up.path, "feature", branch="feature", expect=TEMPORARY)
        assert "feature" in report["error"]
        assert_lists(report)
        assert snapshot(folder) == before

    # The next sync, of a branch that exists, works and keeps the edit.
    report = sync_folder(user, up.path, "feature", branch="main")
    assert report["commit"] == head(up, "main")
    assert_files(folder, {"feature.ipynb": nb("my feature work"), "README.md": COURSE["README.md"]})
    assert_next_sync_changes_nothing(user, "feature", up.path)


# ---------------------------------------------------------------------------------------------
# Interrupted syncs and the state hydra keeps in ~/.hydra/sync.
# ---------------------------------------------------------------------------------------------

def big_course(version, count, size, seed=0):
    """`count` notebooks of about `size` bytes each, all different in every version."""
    files = {}
    for i in range(count):
        rnd = random.Random(f"{seed}-{version}-{i}")
        files[f"big/part{i:03d}.ipynb"] = nb(f"version {version} part {i}\n" + rnd.randbytes(size // 2).hex())
    return files


def make_big_upstream(name, files):
    up = Upstream(SRV / f"sync-{name}.git")
    up.create({"README.md": b"# big\n"})
    for repo in (["-C", up.work], ["--git-dir", up.path]):  # random data: skip delta search, compress fast
        sh("git", *repo, "config", "pack.window", "0")
        sh("git", *repo, "config", "core.compression", "1")
    up.commit(files)
    return up


def read_ref(gitdir, ref):
    """A loose ref of hydra's git directory (read as root, without running git there), or None."""
    try:
        return (pathlib.Path(gitdir) / ref).read_text().strip()
    except FileNotFoundError:
        return None


def start_sync(user, *args):
    """A sync as the user in a session of its own (setpriv execs ipynb-launch: same PID)."""
    return subprocess.Popen(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env",
                             str(LAUNCH), "sync", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def process_group_members(pgid):
    """Live processes of a process group, by PID (zombies left out)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def kill_sync(process):
    """kill -9 the ipynb-launch process, then each git process it left running, by PID."""
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    deadline = time.monotonic() + 10
    while members := process_group_members(process.pid):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.monotonic() < deadline, members
        time.sleep(0.01)
    return process.returncode


def test_sync_killed_at_many_points_never_changes_an_edited_file_and_the_next_sync_completes(site):
    """300 notebooks of 200 KB; each round upstream changes all of them and the sync is killed
    (kill -9) after a different delay: during the fetch, while writing, near the end."""
    user = ensure_user("herd23")
    count, size = 300, 200 * 1024
    up = make_big_upstream("killed", big_course(0, count, size))
    sync_folder(user, up.path, "big")
    folder = home(user) / "big"
    edited = {f"big/part{i:03d}.ipynb": nb(f"the user's own part {i}") for i in range(0, count, 37)}
    for rel, content in edited.items():
        user_write(user, folder / rel, content)

    def complete_sync_is_right(version):
        """The sync after the kill: it succeeds, edits are intact, everything else is upstream's."""
        # A kill after the killed sync recorded the delivery leaves nothing new to report as kept.
        finished = read_ref(git_dir(user, "big"), "refs/hydra/delivered") == head(up)
        report = sync_folder(user, up.path, "big")
        expected = big_course(version, count, size)
        assert report["commit"] == head(up)
        assert sorted(report["kept"]) == ([] if finished else sorted(edited))
        assert set(report["updated"]) <= set(expected) - set(edited)
        assert set(report["upstream_copies"]) <= {r.replace(".ipynb", ".upstream.ipynb") for r in edited}
        for field in ("added", "removed", "restored", "blocked"):
            assert report[field] == [], (field, report)
        assert_files(folder, edited)
        assert_files(folder, {r: c for r, c in expected.items() if r not in edited})
        assert_files(folder, {r.replace(".ipynb", ".upstream.ipynb"): expected[r] for r in edited})
        assert not [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("part")
                    and p.name != "README.md"], "stray files in the folder"

    # Calibration: how long does an uninterrupted sync of a new version take?
    up.commit(big_course(1, count, size))
    started = time.monotonic()
    process = start_sync(user, "--repo", str(up.path), "--dir", "big")
    process.communicate()
    duration = time.monotonic() - started
    assert process.returncode == DONE
    complete_sync_is_right(1)

    phases = []
    for version, fraction in enumerate([0.03, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 0.97], start=2):
        up.commit(big_course(version, count, size))
        expected = big_course(version, count, size)
        process = start_sync(user, "--repo", str(up.path), "--dir", "big")
        time.sleep(duration * fraction)
        status = kill_sync(process)
        written = sum((folder / r).read_bytes() == c for r, c in expected.items() if r not in edited)
        phases.append((round(duration * fraction, 2), status, written))
        assert_files(folder, edited)   # even right after the kill
        assert_sound(folder)
        complete_sync_is_right(version)
    # The kills landed where they were meant to: before any file was written, and half-way.
    untouched = count - len(edited)
    assert any(status == -signal.SIGKILL and 0 < written < untouched for _, status, written in phases), phases
    assert any(status == -signal.SIGKILL and written == 0 for _, status, written in phases), phases
    assert_next_sync_changes_nothing(user, "big", up.path)


def test_two_interrupted_syncs_with_upstream_moving_between_them_leave_untouched_files_following(site):
    """Killed while writing version 2; upstream moves to version 3; killed again just after it
    started on version 3. Files written at version 2 were never touched by the user: the next
    sync must update them, not keep them as the user's."""
    user = ensure_user("herd24")
    count, size = 200, 20 * 1024
    up = make_big_upstream("twice", big_course(1, count, size, seed=24))
    sync_folder(user, up.path, "twice")
    folder = home(user) / "twice"
    gitdir = git_dir(user, "twice")

    # 1: killed once about half of version 2 is written.
    v2 = up.commit(big_course(2, count, size, seed=24))
    probe = folder / f"big/part{count // 2:03d}.ipynb"
    probe_v2 = big_course(2, count, size, seed=24)[f"big/part{count // 2:03d}.ipynb"]
    process = start_sync(user, "--repo", str(up.path), "--dir", "twice")
    deadline = time.monotonic() + 60
    while probe.read_bytes() != probe_v2 and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert kill_sync(process) == -signal.SIGKILL, "the first sync ended before it could be killed"
    assert read_ref(gitdir, f"refs/hydra/delivering/{v2}") == v2
    v2_files = big_course(2, count, size, seed=24)
    at_v2 = [r for r, c in v2_files.items() if (folder / r).read_bytes() == c]
    assert 0 < len(at_v2) < count

    # 2: upstream moves on; the next sync is killed as soon as it starts delivering version 3.
    v3 = up.commit(big_course(3, count, size, seed=24))
    process = start_sync(user, "--repo", str(up.path), "--dir", "twice")
    deadline = time.monotonic() + 60
    while process.poll() is None:
        if read_ref(gitdir, f"refs/hydra/delivering/{v3}") == v3:
            break
        assert time.monotonic() < deadline
    assert kill_sync(process) == -signal.SIGKILL, "the second sync ended before it could be killed"

    # 3: the next sync completes, and every file follows version 3: the user changed none.
    report = sync_folder(user, up.path, "twice")
    assert report["commit"] == v3
    for field in LIST_FIELDS:
        if field != "updated":  # whatever the killed syncs left to update is updated; nothing else happens
            assert report[field] == [], (field, report)
    assert_files(folder, big_course(3, count, size, seed=24))
    assert not list(folder.rglob("*.upstream.*"))
    assert_next_sync_changes_nothing(user, "twice", up.path)


def test_retry_while_the_killed_syncs_git_fetch_still_runs_succeeds_and_keeps_edits(site):
    """kill -9 of the ipynb-launch process alone (as the front giving up on it would) while its
    `git fetch` is receiving a big upstream: that git goes on, orphaned. The user's retry starts
    at once, beside it: it must succeed and keep every edit."""
    user = ensure_user("ken")
    count, size = 300, 200 * 1024
    up = make_big_upstream("orphan", big_course(0, count, size, seed=7))
    receiving = git_dir(user, "orphan") / "shallow.lock"  # held by git fetch while the pack arrives

    def start_and_wait_until_receiving():
        process = start_sync(user, "--repo", str(up.path), "--dir", "orphan")
        deadline = time.monotonic() + 30
        while not receiving.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the fetch was never seen receiving"
        return process, time.monotonic()

    # The first sync, watched: how long does git fetch hold the lock while receiving?
    process, since = start_and_wait_until_receiving()
    while receiving.exists():
        pass
    receive_seconds = time.monotonic() - since
    process.communicate()
    assert process.returncode == DONE
    folder = home(user) / "orphan"
    edited = {"big/part000.ipynb": nb("mine 0"), "big/part150.ipynb": nb("mine 150")}
    for rel, content in edited.items():
        user_write(user, folder / rel, content)

    # Killed half-way through receiving version 1: the orphan ends while the retry fetches.
    up.commit(big_course(1, count, size, seed=7))
    process, since = start_and_wait_until_receiving()
    time.sleep(receive_seconds * 0.4)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process_group_members(process.pid), "no orphaned git left: nothing to prove"
    try:
        result, reports = run_sync(user, "--repo", str(up.path), "--dir", "orphan")
        assert_files(folder, edited)
        assert_sound(folder)
        assert result.returncode == DONE, (result.returncode, reports)
        report = reports[0]
        assert report["commit"] == head(up) and report.get("error") is None
        assert sorted(report["kept"]) == sorted(edited)
        expected = big_course(1, count, size, seed=7)
        assert_files(folder, {r: c for r, c in expected.items() if r not in edited})
    finally:
        deadline = time.monotonic() + 60  # the orphans end on their own; by PID if they do not
        while members := process_group_members(process.pid):
            if time.monotonic() > deadline:
                for pid in members:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
    assert_next_sync_changes_nothing(user, "orphan", up.path)


def test_stale_lock_files_in_hydras_git_dir_do_not_block_the_next_sync(config):
    """A killed git leaves its locks in ~/.hydra/sync/tutorials.git: shallow.lock, ref locks."""
    user = ensure_user("herd25")
    up = make_upstream("locks")
    assert configure_course(config, up, "tutorials").returncode == 0
    sync_courses(user)
    folder = home(user) / "tutorials"
    mine = nb("mine")
    user_write(user, folder / "lesson1.ipynb", mine)
    gitdir = git_dir(user, "tutorials")
    assert (gitdir / "HEAD").exists()
    for lock in ["shallow.lock", "refs/hydra/upstream.lock", "refs/hydra/delivered.lock",
                 "refs/hydra/delivering/x.lock", "packed-refs.lock", "config.lock", "HEAD.lock"]:
        user_write(user, gitdir / lock, b"")

    commit = up.commit({"README.md": b"# v2\n", "lesson1.ipynb": nb("lesson one v2")})
    assert refresh_mirrors().returncode == 0
    report = sync_courses(user)[0]
    assert report["commit"] == commit
    assert_lists(report, updated=["README.md"], kept=["lesson1.ipynb"], upstream_copies=["lesson1.upstream.ipynb"])
    assert_files(folder, {"lesson1.ipynb": mine, "README.md": b"# v2\n", "lesson1.upstream.ipynb": nb("lesson one v2")})
    assert_next_sync_changes_nothing(user, "tutorials")


def test_stale_shallow_lock_in_the_shared_mirror_does_not_freeze_the_course(config):
    """The web server's mirror refresh killed mid-fetch leaves shallow.lock in the mirror; the
    course must still reach the users afterwards."""
    user = ensure_user("herd26")
    up = make_upstream("mirrorlock")
    assert configure_course(config, up, "mirrored").returncode == 0
    sync_courses(user)
    mirror = mirror_path(up.path)
    assert (mirror / "HEAD").exists()
    as_web_server("touch", mirror / "shallow.lock", mirror / "refs" / "heads" / "main.lock")

    commit = up.commit({"README.md": b"# v2\n"})
    refresh_mirrors()
    refreshed = refresh_mirrors()  # the cron job runs again
    report = sync_courses(user)[0]
    assert report["commit"] == commit, f"the mirror stays behind: refresh exited {refreshed.returncode}: {refreshed.stderr}"
    assert_lists(report, updated=["README.md"])
    assert_files(home(user) / "mirrored", {"README.md": b"# v2\n"})
    assert_next_sync_changes_nothing(user, "mirrored")


def test_lost_sync_state_is_rebuilt_without_losing_an_edit(site):
    """~/.hydra/sync/FOLDER.git broken (objects gone): every file then counts as the user's."""
    user = ensure_user("barbara")
    up = make_upstream("broken")
    sync_folder(user, up.path, "broken")
    folder = home(user) / "broken"
    mine = nb("mine")
    user_write(user, folder / "lesson1.ipynb", mine)
    sh("rm", "-rf", git_dir(user, "broken") / "objects", git_dir(user, "broken") / "HEAD")

    commit = up.commit({"README.md": b"# v2\n", "lesson1.ipynb": nb("lesson one v2")})
    report = sync_folder(user, up.path, "broken")
    assert report["commit"] == commit
    assert "lesson1.ipynb" in report["kept"] and "lesson1.upstream.ipynb" in report["upstream_copies"]
    assert_files(folder, {"lesson1.ipynb": mine, "lesson1.upstream.ipynb": nb("lesson one v2"),
                          "data/numbers.csv": COURSE["data/numbers.csv"]})
    assert (folder / "README.md").read_bytes() in (COURSE["README.md"], b"# v2\n")
    assert_next_sync_changes_nothing(user, "broken", up.path)


def test_users_own_git_repository_in_the_folder_is_left_alone(site):
    """The user ran `git init` and committed inside the folder; hydra's git never goes there."""
    user = ensure_user("herd27")
    up = make_upstream("usergit")
    sync_folder(user, up.path, "usergit")
    folder = home(user) / "usergit"
    mine = nb("my committed answer")
    user_write(user, folder / "lesson1.ipynb", mine)
    ident = ["-c", "user.name=Student", "-c", "user.email=s@hydra.invalid"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "my work"], ["checkout", "-q", "-b", "mine"]):
        result = as_user(user, "git", "-C", folder, *ident, *argv)
        assert result.returncode == 0, result.stderr
    own_repo = snapshot(folder / ".git")
    own_head = as_user(user, "git", "-C", folder, "rev-parse", "HEAD").stdout

    up.commit({"README.md": b"# v2\n", "lesson1.ipynb": nb("lesson one v2"), "lesson2.ipynb": nb("two")})
    report = sync_folder(user, up.path, "usergit")
    assert_lists(report, updated=["README.md"], added=["lesson2.ipynb"], kept=["lesson1.ipynb"],
                 upstream_copies=["lesson1.upstream.ipynb"])
    assert_files(folder, {"lesson1.ipynb": mine, "README.md": b"# v2\n", "lesson1.upstream.ipynb": nb("lesson one v2")})
    assert snapshot(folder / ".git") == own_repo
    assert as_user(user, "git", "-C", folder, "rev-parse", "HEAD").stdout == own_head
    assert_next_sync_changes_nothing(user, "usergit", up.path)


# ---------------------------------------------------------------------------------------------
# Upstreams that fail: refusing at once, hanging.
# ---------------------------------------------------------------------------------------------

def test_upstream_that_refuses_at_once_reports_error_quickly_and_touches_nothing(site):
    user = ensure_user("herd28")
    up = make_upstream("refuses")
    sync_folder(user, up.path, "refuses")
    folder = home(user) / "refuses"
    user_write(user, folder / "lesson1.ipynb", nb("mine"))
    before = snapshot(folder)

    gone = up.path.with_suffix(".gone")
    os.rename(up.path, gone)
    try:
        started = time.monotonic()
        report = sync_folder(user, up.path, "refuses", expect=TEMPORARY)
        assert time.monotonic() - started < 5
        assert_lists(report)
        assert snapshot(folder) == before
        # A TCP port nobody listens on refuses at once too; a folder never synced gets nothing.
        started = time.monotonic()
        report = sync_folder(user, "git://127.0.0.1:1/course", "never", expect=TEMPORARY)
        assert time.monotonic() - started < 5
        assert_lists(report)
        assert not (home(user) / "never").exists()
    finally:
        os.rename(gone, up.path)
    assert_next_sync_changes_nothing(user, "refuses", up.path)


class SilentGitServer:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)
        for connection in self.connections:
            connection.close()


def test_upstream_that_hangs_is_given_up_within_the_fetch_timeout_and_touches_nothing(config):
    timeout = 3
    config(**{"sync.fetch_timeout_seconds": str(timeout)})
    user = ensure_user("herd29")
    up = make_upstream("hangs")
    sync_folder(user, up.path, "other")
    folder = home(user) / "other"
    user_write(user, folder / "lesson1.ipynb", nb("mine"))
    before = snapshot(folder)

    server = SilentGitServer()
    try:
        started = time.monotonic()
        report = sync_folder(user, f"git://127.0.0.1:{server.port}/x", "other", expect=TEMPORARY, timeout=60)
        elapsed = time.monotonic() - started
        assert server.connections, "git never reached the silent server"
        assert elapsed < timeout + 2, elapsed
        assert "timed out" in report["error"]
        assert_lists(report)
        assert snapshot(folder) == before
    finally:
        server.close()
    assert_next_sync_changes_nothing(user, "other", up.path)


# ---------------------------------------------------------------------------------------------
# Links planted by the user.
# ---------------------------------------------------------------------------------------------

def test_symlink_named_like_a_course_file_is_never_written_through(site):
    user = ensure_user("linus")
    up = make_upstream("linkfile")
    sync_folder(user, up.path, "linkfile")
    folder = home(user) / "linkfile"
    private = home(user) / "private-notes.md"
    user_write(user, private, b"private, not a course file\n")
    (folder / "README.md").unlink()
    user_symlink(user, private, folder / "README.md")

    up.commit({"README.md": b"# v2 would overwrite the link's target\n", "lesson1.ipynb": nb("lesson one v2")})
    report = sync_folder(user, up.path, "linkfile")
    assert_lists(report, updated=["lesson1.ipynb"], blocked=["README.md"])
    assert private.read_bytes() == b"private, not a course file\n"
    assert os.readlink(folder / "README.md") == str(private)
    assert_next_sync_changes_nothing(user, "linkfile", up.path)


def test_symlinked_subfolder_is_never_written_through(site):
    user = ensure_user("linus")
    up = make_upstream("linkdir")
    sync_folder(user, up.path, "linkdir")
    folder = home(user) / "linkdir"
    elsewhere = home(user) / "elsewhere"
    user_write(user, elsewhere / "mine.csv", b"mine\n")
    sh("rm", "-r", folder / "data")
    user_symlink(user, elsewhere, folder / "data")
    outside = snapshot(elsewhere)

    up.commit({"data/numbers.csv": b"4,5,6\n", "data/extra.csv": b"new\n"})
    report = sync_folder(user, up.path, "linkdir")
    assert_lists(report, blocked=["data/numbers.csv", "data/extra.csv"])
    assert snapshot(elsewhere) == outside
    assert os.readlink(folder / "data") == str(elsewhere)
    # The next sync works too: the link still blocks what would go through it, nothing else.
    result, reports = run_sync(user, "--repo", str(up.path), "--dir", "linkdir")
    assert result.returncode == DONE and reports[0].get("error") is None
    assert set(reports[0]["blocked"]) <= {"data/numbers.csv", "data/extra.csv"}
    assert all(not reports[0][f] for f in LIST_FIELDS if f != "blocked")
    assert snapshot(elsewhere) == outside


def test_symlink_planted_at_the_upstream_copy_name_is_never_written_through(site):
    user = ensure_user("linus")
    up = make_upstream("linkcopy")
    sync_folder(user, up.path, "linkcopy")
    folder = home(user) / "linkcopy"
    mine = nb("mine")
    user_write(user, folder / "lesson1.ipynb", mine)
    target = home(user) / "keep-me.ipynb"
    user_write(user, target, nb("must stay"))
    user_symlink(user, target, folder / "lesson1.upstream.ipynb")

    up.commit({"lesson1.ipynb": nb("lesson one v2")})
    report = sync_folder(user, up.path, "linkcopy")
    assert target.read_bytes() == nb("must stay")
    assert_files(folder, {"lesson1.ipynb": mine})
    assert "lesson1.ipynb" in report["kept"]
    copy = folder / "lesson1.upstream.ipynb"
    if copy.is_symlink():
        assert report["blocked"] == ["lesson1.upstream.ipynb"] or report["blocked"] == ["lesson1.ipynb"]
    else:
        assert copy.read_bytes() == nb("lesson one v2")
        assert report["upstream_copies"] == ["lesson1.upstream.ipynb"]
    assert_next_sync_changes_nothing(user, "linkcopy", up.path)


# ---------------------------------------------------------------------------------------------
# The one-off sync into another folder, and its arguments.
# ---------------------------------------------------------------------------------------------

def test_one_off_sync_of_another_branch_into_a_nested_folder_keeps_the_same_guarantees(site):
    user = ensure_user("barbara")
    up = make_upstream("oneoff")
    up.git("checkout", "-q", "-b", "spring-2025")
    spring = up.commit({"spring.ipynb": nb("spring term")})
    report = sync_folder(user, up.path, "courses/extra/ml", branch="spring-2025")
    assert report["commit"] == spring and report["repo"] == str(up.path)
    assert_lists(report, added=[*COURSE, "spring.ipynb"])
    folder = home(user) / "courses/extra/ml"
    assert_files(folder, {**COURSE, "spring.ipynb": nb("spring term")})
    assert not (home(user) / "tutorials").exists()  # the configured course is not synced by it

    mine = nb("my spring work")
    user_write(user, folder / "spring.ipynb", mine)
    (folder / "README.md").unlink()
    spring2 = up.commit({"spring.ipynb": nb("spring term v2"), "lesson1.ipynb": nb("spring lesson one")})
    up.git("checkout", "-q", "main")
    up.commit({"README.md": b"# main moved too, not synced here\n"})
    report = sync_folder(user, up.path, "courses/extra/ml", branch="spring-2025")
    assert report["commit"] == spring2
    assert_lists(report, updated=["lesson1.ipynb"], restored=["README.md"], kept=["spring.ipynb"],
                 upstream_copies=["spring.upstream.ipynb"])
    assert_files(folder, {"spring.ipynb": mine, "spring.upstream.ipynb": nb("spring term v2"),
                          "README.md": COURSE["README.md"], "lesson1.ipynb": nb("spring lesson one")})
    assert_next_sync_changes_nothing(user, "courses/extra/ml", up.path, branch="spring-2025")


@pytest.mark.parametrize("argv", [
    ["--repo", "/srv/hydra-test/course.git", "--dir", "../escape"],
    ["--repo", "/srv/hydra-test/course.git", "--dir", "/tmp/escape"],
    ["--repo", "/srv/hydra-test/course.git", "--dir", "a/../../escape"],
    ["--repo", "/srv/hydra-test/course.git", "--dir", "."],
    ["--repo", "/srv/hydra-test/course.git"],
    ["--dir", "escape"],
    ["--repo", "-uhack", "--dir", "escape"],
    ["--repo", "/srv/hydra-test/course.git", "--branch", "--upload-pack=touch /tmp/x", "--dir", "escape"],
    ["--repo", "/srv/hydra-test/course.git", "--branch", "main..x", "--dir", "escape"],
])
def test_one_off_sync_refuses_a_folder_outside_the_home_or_a_hostile_argument(site, argv):
    user = ensure_user("linus")
    before = snapshot(home(user))
    result = as_user(user, LAUNCH, "sync", "--json", *argv)
    assert result.returncode == USAGE, (result.returncode, result.stdout, result.stderr)
    assert snapshot(home(user)) == before
    assert not os.path.lexists("/tmp/escape") and not os.path.lexists("/home/escape") and not os.path.lexists("/tmp/x")
