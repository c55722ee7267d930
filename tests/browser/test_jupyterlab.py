"""JupyterLab in a real browser, as the README tells a user to work: the sandbox's environment
exported, `jupyter lab` on the runbooks, `pod_crashloop` opened and run with Run → Run All Cells.

Debian's Chromium (headless) is driven by its own chromedriver through selenium; nothing is
downloaded (`python3 scripts/dev.py test` installs the two Debian packages when missing). A missing
browser fails the test with one line: it is never skipped silently.

Two notebooks are opened, from a temporary root holding copies:
  * `committed/pod_crashloop.ipynb`, byte for byte the committed runbook: opening it must not mark
    it modified (the tab's `jp-mod-dirty`), and it is never run. A copy, so that an autosave of a
    wrongly dirty document cannot rewrite the repository during the test.
  * `pod_crashloop.ipynb`, the same runbook with its parameters cell filled with the sandbox's
    names (`payments`, `api`) through nbformat, as a user fills a copy before an incident; the test
    does not type into CodeMirror, whose key handling is JupyterLab's business, not the runbook's.
The screenshot of the diagnosis and plan is kept under the test's tmp_path (its path is printed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook_sandbox.manager import SandboxInfo

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/lib/chromium/chromium")  # the binary behind Debian's /usr/bin/chromium wrapper
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-quic", "--window-size=1600,1200")
pytestmark = pytest.mark.browser
RUN_TIMEOUT = 300.0  # seconds for Run All on a 2-core machine shared with other work


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fill_parameters(src: Path, dst: Path, values: dict[str, str]) -> None:
    import nbformat

    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    for name, value in values.items():
        index = next(i for i, ln in enumerate(lines) if ln.startswith((f"{name} =", f"{name}:")))
        comment = lines[index].partition("#")[2]
        lines[index] = f"{name} = {value!r}  #{comment}"
    cell.source = "\n".join(lines)
    nbformat.write(nb, dst)


@pytest.fixture
def lab(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`jupyter lab` on a loopback port with a token, against the sandbox; ended by PID."""
    root = tmp_path / "root"
    (root / "committed").mkdir(parents=True)
    committed = REPO / "notebooks" / "pod_crashloop.ipynb"
    shutil.copyfile(committed, root / "committed" / "pod_crashloop.ipynb")
    _fill_parameters(committed, root / "pod_crashloop.ipynb", {"namespace": "payments", "deployment": "api"})
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # the "official Jupyter news?" toast would sit over the notebook in every screenshot
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the DOM (no virtual windowing), so outputs can be read wherever they are
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **sandbox.env, "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    env.pop("AWS_PROFILE", None)
    log = (tmp_path / "jupyter-lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--allow-root", "--LabApp.extension_manager=readonly", "--LabApp.news_url=",
         f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
         f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (tmp_path / "jupyter-lab.log").read_text()[-600:]
                    pytest.fail(f"jupyter lab did not start: {tail}")
                time.sleep(0.3)
        yield {"url": url, "token": token, "root": root, "committed": committed}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium is missing: `python3 scripts/dev.py test` installs it "
                    "(apt-get install -y chromium chromium-driver)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, script: str, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


KERNEL_IDLE = """
const bar = document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar');
const text = bar ? bar.textContent : '';
return /\\|\\s*Idle/.test(text) || null;
"""
CURRENT_TAB = "return document.querySelector('.lm-TabBar-tab.jp-mod-current')?.className || null"
PROMPTS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
const prompts = Array.from(panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
  .map(p => p.textContent.trim());
"""
ALL_RUN = PROMPTS + "return (prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t))) || null;"
OUTPUTS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
return Array.from(panel.querySelectorAll('.jp-CodeCell')).map(cell => ({
  prompt: cell.querySelector('.jp-InputPrompt').textContent.trim(),
  source: cell.querySelector('.jp-InputArea-editor').textContent,
  html: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o => o.innerHTML).join('\\n'),
  text: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o => o.textContent).join('\\n'),
  stderr: Array.from(cell.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(o => o.textContent),
}));
"""


def _kernel_state(lab: dict[str, Any], path: str) -> str | None:
    """The execution state of the kernel of `path`'s session, as the server knows it."""
    with urllib.request.urlopen(f"{lab['url']}/api/sessions?token={lab['token']}", timeout=5) as response:
        sessions = json.load(response)
    return next((s["kernel"]["execution_state"] for s in sessions if s.get("path") == path), None)


def _open(driver: Any, lab: dict[str, Any], path: str) -> None:
    """Open `path` and wait until its own kernel is idle, on the server and in the page's status bar
    (the status bar follows the current tab; it may still show the previous notebook's kernel)."""
    driver.get(f"{lab['url']}/lab/tree/{path}?token={lab['token']}")
    _wait(driver, "return document.querySelector('.jp-NotebookPanel .jp-Cell') !== null || null",
          timeout=90, what=f"{path} to open")
    deadline = time.monotonic() + 120
    while _kernel_state(lab, path) != "idle":
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {path} did not become idle in 120 s")
        time.sleep(0.5)
    _wait(driver, KERNEL_IDLE, timeout=60, what="the page to show the kernel idle")
    time.sleep(1)


def _click_menu(driver: Any, menu: str, item: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//*[text()='{menu}']]").click()
    driver.find_element(
        By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[contains(@class,'lm-Menu-itemLabel') "
                  f"and text()='{item}']]").click()


def test_pod_crashloop_runs_in_jupyterlab(lab: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    # 1. the committed runbook, opened and left alone, is not marked modified
    _open(browser, lab, "committed/pod_crashloop.ipynb")
    time.sleep(3)  # a model change after load (metadata normalisation) marks the tab within a second
    tab = browser.execute_script(CURRENT_TAB)
    assert "pod_crashloop" in browser.execute_script(
        "return document.querySelector('.lm-TabBar-tab.jp-mod-current').textContent")
    assert "jp-mod-dirty" not in tab, f"JupyterLab marks the committed runbook modified on open: {tab}"

    # 2. the runbook with the sandbox's names: Run -> Run All Cells
    _open(browser, lab, "pod_crashloop.ipynb")
    count = len(browser.execute_script(PROMPTS + "return prompts;"))
    _click_menu(browser, "Run", "Run All Cells")
    started = PROMPTS + "return prompts.some(t => t !== '[ ]:') || null;"
    _wait(browser, started, timeout=60, what="Run All Cells to start a cell (every prompt still [ ])")
    try:
        _wait(browser, ALL_RUN, timeout=RUN_TIMEOUT, what="every cell to run (no [*] or [ ] prompt)")
    finally:
        shot = tmp_path / "pod_crashloop-jupyterlab.png"
        cells = browser.execute_script(OUTPUTS)
        plan_cell = next((i for i, c in enumerate(cells) if "<b>Plan</b>" in c["html"]), None)
        browser.execute_script(
            "const cells = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell');"
            "cells[arguments[0]].scrollIntoView({block: 'center'});",
            plan_cell if plan_cell is not None else len(cells) - 1)
        time.sleep(0.5)
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
    cells = browser.execute_script(OUTPUTS)
    assert len(cells) == count and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells)
    # no cell errored (an error renders as stderr output) and nothing wrote to stderr
    assert [c["stderr"] for c in cells if c["stderr"]] == []
    diagnosis = next(c for c in cells if "diagnose_crashloop" in c["source"])
    assert "OOMKilled" in diagnosis["text"], diagnosis["text"][:500]
    plan = next(c for c in cells if c["source"].startswith("plan = rk.k8s.plan_mitigation"))
    assert "<b>Plan</b>" in plan["html"]
    assert "kubectl" in plan["text"]
    # the dirty indicator checked in step 1 is live: the run's outputs mark this tab modified
    assert "jp-mod-dirty" in browser.execute_script(CURRENT_TAB)
    # the committed runbook was never saved over (opening it changed nothing on disk)
    assert (lab["root"] / "committed" / "pod_crashloop.ipynb").read_bytes() == lab["committed"].read_bytes()
