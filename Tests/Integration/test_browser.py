"""Issue 7, a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
WebDriver) against the sandbox site (Apache with LDAP Basic auth, mod_fcgid, hydra-cgi, sudo, the
helpers, Jupyter). The tests assert on what the person ends up seeing, whichever way the front
gets them there (the auto-login page, or a redirect for a returning browser).

Users: hedy and edsger (this file's own directory people). Each Chromium has a profile of its
own: its own cookies and HTTP auth cache, i.e. another person's (or another device's) browser.
Screenshots of the lab and of hydra's pages go to ARTIFACTS/screenshots.
"""
import json
import pathlib
import urllib.parse

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import PASSWORD, UPSTREAM, Upstream, install_config, sh
from e2e_site import (browsers, keep_logs, reload_apache, server_pid, start_in_progress,  # noqa: F401 (browsers: a fixture)
                      stop_server)

# A course of this file's own, with a code cell, next to the site's default course ("tutorials").
TOUR = pathlib.Path("/srv/hydra-test/browser-tour.git")
TOUR_CELL = 'import getpass, os\nprint(f"{getpass.getuser()} runs this in {os.getcwd()}")'
COURSES = ((str(UPSTREAM), "main", "tutorials"), (str(TOUR), "main", "tour"))


def tour_notebook():
    return json.dumps({
        "cells": [
            {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# A tour\nRun the cell below."},
            {"cell_type": "code", "id": "whoami", "metadata": {}, "execution_count": None, "outputs": [],
             "source": TOUR_CELL},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


@pytest.fixture(scope="module", autouse=True)
def tour_course(site):
    """The site with a second course, as an admin adds one: a [[courses]] block, then graceful."""
    Upstream(TOUR).create({"tour.ipynb": tour_notebook()})
    install_config(courses=COURSES)
    reload_apache()
    yield
    keep_logs("browser-logs", ["hedy", "edsger"])
    install_config()
    reload_apache()




@pytest.fixture()
def hedy(browsers):
    """Hedy's browser (a fresh one for each test, so that one test's trouble stays its own)."""
    return browsers("hedy")


def answer_password_prompt(browser, user):
    """What a person does at the browser's Basic-auth prompt: the credentials go into the
    browser's HTTP auth cache for this site. (A URL with credentials stands in for typing them;
    it is a page without side effects, so the visit that follows is a plain one.)"""
    browser.get(f"http://{user}:{urllib.parse.quote(PASSWORD, safe='')}@localhost/hydra/whoami")
    browser.wait(lambda b: f"Signed in as {user}" in b.text(), f"the site to recognise {user}")


def open_site(browser, user):
    """Types the site's address and waits for the person's own lab."""
    browser.get("http://localhost/")
    browser.wait_for_lab(user)
    show_file_browser(browser)


def sign_in(browser, user):
    answer_password_prompt(browser, user)
    open_site(browser, user)


def show_file_browser(browser):
    """Opens JupyterLab's file browser in the left side bar if it is closed."""
    def shown(b):
        if [e for e in b.find("#filebrowser .jp-DirListing-item") if e.is_displayed()]:
            return True
        tabs = b.find('.jp-SideBar [data-id="filebrowser"]')
        if tabs and tabs[0].get_attribute("aria-selected") != "true":  # the side bar is closed: open it
            tabs[0].click()
        return False
    browser.wait(shown, "the file browser")


def open_in_file_browser(browser, *names):
    """Double-clicks folder after folder, then the file, as a person does."""
    for name in names:
        item = browser.wait(lambda b: next((e for e in b.find("#filebrowser .jp-DirListing-item")
                                            if e.get_attribute("title") and listing_name(e) == name), None),
                            f"{name!r} in the file browser")
        ActionChains(browser.driver).double_click(item).perform()


def listing_name(item):
    return item.find_element(By.CSS_SELECTOR, ".jp-DirListing-itemText").text.strip()


def file_browser_names(browser):
    return {listing_name(e) for e in browser.find("#filebrowser .jp-DirListing-item")}


def upstream_names(path):
    """The top-level names of a course's upstream, as git has them."""
    return set(sh("git", "-C", path, "ls-tree", "--name-only", "main").stdout.split())


def cookies(browser):
    """Every cookie of the browser, whatever its path (DevTools: Network.getAllCookies)."""
    return {c["name"]: c for c in browser.driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]}


# --- one person, one browser ------------------------------------------------------------------

def test_real_browser_sign_in_ends_in_jupyterlab_with_the_course_notebooks(hedy):
    sign_in(hedy, "hedy")
    assert "token" not in hedy.url
    hedy.wait(lambda b: {"tutorials", "tour"} <= file_browser_names(b), "the course folders in the file browser")
    open_in_file_browser(hedy, "tutorials")
    expected = {name for name in upstream_names(UPSTREAM) if name.endswith(".ipynb")}
    assert expected, "the default course has notebooks"
    hedy.wait(lambda b: expected <= file_browser_names(b), f"the tutorial notebooks {sorted(expected)}")
    hedy.shot("lab-file-browser")


def test_tutorial_notebook_runs_a_cell_in_the_persons_own_kernel(hedy):
    sign_in(hedy, "hedy")
    open_in_file_browser(hedy, "tour", "tour.ipynb")
    editor = hedy.wait(lambda b: next((e for e in b.find(".jp-NotebookPanel .jp-CodeCell .cm-content") if e.is_displayed()), None),
                       "the notebook's code cell")
    hedy.wait(lambda b: "getpass" in editor.text, "the cell's code")
    # As a person does, wait for the kernel to be ready (the status bar says so).
    hedy.wait(lambda b: any("| Idle" in e.text for e in b.find(".jp-StatusBar-Item")), "the kernel to be idle")
    editor.click()
    ActionChains(hedy.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    output = hedy.wait(lambda b: [e.text for e in b.find(".jp-NotebookPanel .jp-OutputArea-output") if e.text.strip()],
                       "the cell's output")
    # The kernel behind Apache's websocket proxy runs as hedy's own Unix account, in her copy of the course.
    assert output == ["hedy runs this in /home/hedy/tour"]
    hedy.shot("lab-tutorial-output")


def test_logout_shows_the_logged_out_page_and_the_link_signs_in_again(hedy):
    sign_in(hedy, "hedy")
    assert "hydra-jupyter" in cookies(hedy)
    file_menu = next(e for e in hedy.find(".lm-MenuBar-item") if e.text.strip() == "File")
    file_menu.click()
    logout = hedy.wait(lambda b: next((e for e in b.find(".lm-Menu-item") if e.text.strip().startswith("Log Out")), None),
                       "Log Out in the File menu")
    logout.click()
    hedy.wait(lambda b: "You are logged out" in b.text(), "the logged-out page")
    assert hedy.path.startswith("/?logged_out")
    # Logged out of Jupyter for real: the login cookie is gone, not just hidden.
    assert "hydra-jupyter" not in cookies(hedy)
    hedy.shot("logged-out")
    hedy.driver.find_element(By.LINK_TEXT, "Open my notebooks again").click()
    hedy.wait_for_lab("hedy")
    assert "hydra-jupyter" in cookies(hedy)


def test_without_javascript_the_sign_in_page_offers_a_button_that_opens_the_lab(browsers, hedy):
    sign_in(hedy, "hedy")  # her server is running: this is about the page, not the start
    plain = browsers("hedy-no-javascript", javascript=False)
    answer_password_prompt(plain, "hedy")
    plain.get("http://localhost/")
    button = plain.wait(lambda b: b.find("#login button[type=submit]"), "the auto-login page's button")[0]
    assert "Open my notebooks" in button.text
    plain.shot("auto-login-without-javascript")
    button.click()
    plain.wait(lambda b: b.path == "/user/hedy/lab" and b.driver.title == "JupyterLab", "hedy's lab page")


# --- a second person ----------------------------------------------------------------------------

def test_second_person_in_another_browser_cannot_open_the_first_persons_lab(browsers, hedy):
    sign_in(hedy, "hedy")
    hedy_pid = server_pid("hedy")
    edsger = browsers("edsger")
    sign_in(edsger, "edsger")
    for path in ["/user/hedy/lab", "/user/hedy/lab/tree/tour/tour.ipynb", "/user/hedy/tree/tour",
                 "/user/hedy/api/contents/tour", "/user/hedy/files/tour/tour.ipynb", "/user/hedy/api/kernels"]:
        edsger.get(path)
        edsger.wait(lambda b: b.driver.title, f"an answer for {path}")
        assert edsger.driver.title == "403 Forbidden", (path, edsger.driver.title, edsger.text()[:300])
        assert "runs this in" not in edsger.driver.page_source
        if path == "/user/hedy/lab":
            edsger.shot("forbidden-another-persons-lab")
    # From edsger's own lab page (same origin), scripts get no further than his address bar;
    # the same requests to his own server show that they would work.
    open_site(edsger, "edsger")
    answers = edsger.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
        const websocket = path => new Promise(resolve => {
            const ws = new WebSocket(`ws://${location.host}${path}`);
            ws.onopen = () => { ws.close(); resolve("open"); };
            ws.onerror = () => resolve("refused");
        });
        const status = (path, init) => fetch(path, init).then(r => r.status);
        Promise.all([
            status("/user/hedy/api/contents/tour"),
            status("/user/hedy/api/kernels", {method: "POST", headers: {"X-XSRFToken": xsrf}, body: "{}"}),
            websocket("/user/hedy/api/events/subscribe"),
            status("/user/edsger/api/contents/tour"),
            websocket("/user/edsger/api/events/subscribe"),
        ]).then(([contents, new_kernel, ws, own_contents, own_ws]) => done({contents, new_kernel, ws, own_contents, own_ws}),
                e => done({error: String(e)}));
    """)
    assert answers == {"contents": 403, "new_kernel": 403, "ws": "refused", "own_contents": 200, "own_ws": "open"}
    # A link that names hedy's lab takes edsger to his own.
    edsger.get("/?next=" + urllib.parse.quote("/user/hedy/lab", safe=""))
    edsger.wait_for_lab("edsger")
    assert server_pid("hedy") == hedy_pid  # hedy's server was neither touched nor restarted


# --- hydra's own pages ----------------------------------------------------------------------------

def test_starting_page_reloads_by_itself_until_the_lab_is_there(browsers):
    # edsger on another device (no cookies of the site), his server stopped: the visit must start
    # it, and another visit is busy starting it right now.
    stop_server("edsger")
    device = browsers("edsger-second-device")
    answer_password_prompt(device, "edsger")
    with start_in_progress("edsger"):
        device.get("http://localhost/")
        device.wait(lambda b: "Starting your notebook server" in b.text(), "the starting page")
        assert device.path == "/"
        device.shot("starting")
    # Nobody reloads: the page does it by itself, and ends in the lab.
    device.wait_for_lab("edsger")


def test_refused_account_sees_a_page_that_says_so_and_no_lab(browsers):
    install_config(courses=COURSES, **{"accounts.deny": '["root", "www-data", "nobody", "daemon", "edsger"]'})
    reload_apache()
    try:
        refused = browsers("edsger-refused")
        answer_password_prompt(refused, "edsger")
        refused.get("http://localhost/")
        refused.wait(lambda b: "not available for this account" in b.text(), "the refusal page")
        assert refused.driver.title == "Not available for this account"
        assert refused.path == "/"
        refused.shot("refused-account")
    finally:
        install_config(courses=COURSES)
        reload_apache()
