"""Real-browser fixtures: the web app under gunicorn and a real worker sharing a temporary data directory,
and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.faults import inject

CHROMIUM = "/usr/bin/chromium"
# Every page needs a signed-in user: the stack gets this admin from `flask users create`, and the browser
# signs in once through the real sign-in page (its storage state is reused by every test's page).
E2E_ADMIN, E2E_PASSWORD = "e2e-admin", "e2e admin password"
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FAULTS_SITE = Path(inject.__file__).with_name("site")  # loads inject.py into the worker (hold_worker_at)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """Web + worker processes on one data directory, and direct read access to its SQLite database."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({
            "STAGEBACKUP_DATA_DIR": str(self.data),
            "STAGEBACKUP_DATABASE_URL": "",
            "STAGEBACKUP_PROGRESS_FLUSH_INTERVAL_S": "0.2",
            "STAGEBACKUP_HEARTBEAT_INTERVAL_S": "1",
            "STAGEBACKUP_QUEUE_POLL_INTERVAL_S": "0.2",
            "STAGEBACKUP_COMPRESS_THREADS": "1",
            "FLASK_APP": "stagebackup",
        })
        self.logs = root / "logs"
        self.logs.mkdir()
        self.web = self.worker = None
        self.workers_started = 0  # workers started into logs/worker.log so far (stop_worker waits for each)

    def _spawn(self, name, args, **env: str):
        out = open(self.logs / f"{name}.log", "ab")  # a restarted worker goes on in the same log
        return subprocess.Popen(args, cwd=REPO, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT)

    def start(self):
        self.data.mkdir()
        self.web = self._spawn("web", [
            str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "8",
            "--worker-class", "gthread", "wsgi:app",
        ])
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("web app did not start:\n" + (self.logs / "web.log").read_text())
            time.sleep(0.2)
        self.start_worker()

    def start_worker(self, **env: str):
        """The worker; ``env`` adds to its environment (tests/faults/inject.py's pause points, say)."""
        self.workers_started += 1
        self.worker = self._spawn("worker", [sys.executable, "-m", "flask", "--app", "stagebackup", "worker", "run"],
                                  **env)

    def hold_worker_at(self, point: str) -> tuple[Path, Path]:
        """Restart the worker so that it stops at ``point`` (tests/faults/inject.py's pause points: just after
        a stage began, inside an archive's copy…) and goes on once the returned resume file exists; the first
        path is the mark it writes when it stops. What the job does is real: only its duration is stretched,
        where a watcher sending SIGSTOP could look too late."""
        mark, resume = self.root / f"paused-{point}", self.root / f"resume-{point}"
        self.stop_worker()
        self.start_worker(PYTHONPATH=f"{FAULTS_SITE}{os.pathsep}{REPO}",
                          **{inject.PAUSE_AT: point, inject.PAUSE_MARK: str(mark), inject.RESUME: str(resume)})
        return mark, resume

    @staticmethod
    def wait_until_held(mark: Path, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not mark.exists():
            assert time.monotonic() < deadline, f"the worker did not stop at {mark.name}"
            time.sleep(0.05)

    def stop_worker(self):
        """A warm stop (SIGTERM) of an idle worker: jobs queued meanwhile stay queued, nothing holds a lock.

        Only once it has said it started: a SIGTERM while Python is still importing ends it at once (-15),
        which on a loaded machine happened to this test.
        """
        deadline = time.monotonic() + 60
        while (self.logs / "worker.log").read_bytes().count(b" started (drive=") < self.workers_started:
            assert self.worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        self.worker.terminate()
        assert self.worker.wait(timeout=30) == 0

    def flask(self, *args, stdin: str | None = None):
        return subprocess.run([sys.executable, "-m", "flask", "--app", "stagebackup", *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, check=True, timeout=60, input=stdin)

    def query(self, sql, *params):
        conn = sqlite3.connect(f"file:{self.data / 'backup_system.db'}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def stop(self):
        for proc in (self.worker, self.web):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    """The module's stack; a module may define ``prepare_stack(stack)`` to make folders and set the
    environment before the processes start."""
    stack = Stack(tmp_path_factory.mktemp("e2e"))
    prepare = getattr(request.module, "prepare_stack", None)
    if prepare is not None:
        prepare(stack)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make install-test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: `make install-test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"],
        )
        yield browser
        browser.close()


def sign_in(page, stack: Stack, name: str, password: str) -> None:
    """Fill in and send the sign-in page, as a person would."""
    page.goto(stack.url + "/sign-in")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#sign-in-form button[type=submit]")


@pytest.fixture(scope="module")
def signed_in_state(stack, browser, tmp_path_factory) -> str:
    """The browser state (session cookie) of the admin, signed in once through the sign-in page."""
    stack.flask("users", "create", E2E_ADMIN, "--role", "admin", "--password-stdin", stdin=E2E_PASSWORD + "\n")
    stack.flask("keys", "saved")  # no master key banner in the screenshots
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    sign_in(page, stack, E2E_ADMIN, E2E_PASSWORD)
    page.wait_for_url(stack.url + "/backup")
    path = tmp_path_factory.mktemp("browser-state") / "state.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


def _open_page(browser, storage_state: str | None):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                  storage_state=storage_state)
    page = context.new_page()
    page.csp_errors = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and page.csp_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.csp_errors.append(f"page error: {exc}"))
    return context, page


@pytest.fixture
def page(browser, signed_in_state):
    """A page of a browser signed in as the admin."""
    context, page = _open_page(browser, signed_in_state)
    yield page
    context.close()


@pytest.fixture
def anonymous_page(browser):
    """A page of a browser that has not signed in."""
    context, page = _open_page(browser, None)
    yield page
    context.close()


@pytest.fixture
def screenshots_dir(tmp_path_factory):
    """Where the pictures the docs show are taken (tests/unit/test_docs.py checks that each one the docs
    reference is taken here). Every run takes them; they replace docs/screenshots only with
    ``STAGEBACKUP_SCREENSHOTS=1`` (``make screenshots``): a test run must not rewrite tracked files."""
    if os.environ.get("STAGEBACKUP_SCREENSHOTS") == "1":
        path = REPO / "docs" / "screenshots"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")
