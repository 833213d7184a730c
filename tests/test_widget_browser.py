"""04_predict.ipynb in a real JupyterLab and a headless Chromium: run all cells, upload a photo
through the widget, and see the labelled faces appear. Saves test-output/widget.png and
docs/widget.png."""

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
from pathlib import Path

import pytest
from matplotlib import cbook

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# A first run loads TensorFlow and the model: slow on a busy 2-core machine.
RUN_ALL_MS = 240_000
PREDICT_MS = 120_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_settings(folder: Path) -> Path:
    """JupyterLab user settings that keep news pop-ups out of the way."""
    path = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return folder


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} in {timeout:.0f} s")


@pytest.fixture
def jupyterlab(tmp_path, smoke_run):
    """JupyterLab on 127.0.0.1 serving a copy of 04_predict.ipynb (never the committed file:
    JupyterLab saves outputs into what it opens). Yields its base URL and token."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "04_predict.ipynb", root)
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,  # FRLIB_SMOKE, FRLIB_CACHE and FRLIB_WORKDIR from the root conftest
        "FRLIB_SMOKE": "1",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(quiet_settings(tmp_path / "settings")),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
    ]
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/status?token={token}", server)
        yield base, token
    finally:
        shut_down(server, f"{base}/api/shutdown?token={token}")
        log.close()


def shut_down(server: subprocess.Popen, shutdown_url: str) -> None:
    """Ask the server to stop (it shuts its kernels down too); terminate it if it won't."""
    if server.poll() is None:
        try:
            urllib.request.urlopen(urllib.request.Request(shutdown_url, method="POST"), timeout=10)
        except OSError:
            server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def dismiss_dialogs(page) -> None:
    """Close any JupyterLab dialog (kernel choice, news...) that would catch the next click."""
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        buttons = dialog.locator(".jp-Dialog-button.jp-mod-accept")
        if buttons.count():
            buttons.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def run_all_cells(page) -> None:
    """Run > Run All Cells; once more if the first click came before the notebook was ready."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(2):
        dismiss_dialogs(page)
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # focus the notebook
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            started.first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("Run All Cells did not start the notebook")


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} missing: apt-get update && apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def upload_photo(page) -> None:
    """Run every cell, then upload the portrait through the notebook's FileUpload."""
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
    run_all_cells(page)
    upload = page.locator(".widget-upload")
    upload.wait_for(state="visible", timeout=RUN_ALL_MS)
    dismiss_dialogs(page)
    # ipywidgets 8 makes the file input only when the button is clicked.
    with page.expect_file_chooser() as chooser:
        upload.click()
    chooser.value.set_files(str(HOPPER))
    page.locator(".widget-output table").wait_for(timeout=PREDICT_MS)


def test_uploading_a_photo_shows_its_faces_labelled(jupyterlab, browser):
    base, token = jupyterlab
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.goto(f"{base}/lab/tree/04_predict.ipynb?token={token}")
    OUTPUT.mkdir(exist_ok=True)
    try:
        upload_photo(page)
    except Exception:
        page.screenshot(path=str(OUTPUT / "widget-failure.png"), full_page=True)
        raise

    output = page.locator(".widget-output")
    text = output.inner_text()
    assert "grace_hopper.jpg: 1 face(s)" in text
    assert "gender=male" in text or "gender=female" in text
    assert output.locator("img").count() == 1  # the annotated photo
    for task in ("emotion", "age", "ethnicity", "gender"):
        assert task in output.locator("table").inner_text()
    assert "Traceback" not in page.locator(".jp-NotebookPanel").inner_text()

    widget = page.locator(".jp-Cell").filter(has=page.locator(".widget-upload"))
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(OUTPUT / "widget.png"))
    (ROOT / "docs").mkdir(exist_ok=True)
    shutil.copy(OUTPUT / "widget.png", ROOT / "docs" / "widget.png")
