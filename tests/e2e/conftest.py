"""Fixtures for the browser tests: one Chromium per session, a new context per test, the
portal served by pytest-django's `live_server`, an SMTP server on loopback, and tasks run
either in-process (SQLite; no broker) or by a real `celery worker` process (PostgreSQL with
CELERY_BROKER_URL set) -- the same journey code runs both ways.

A failing test leaves its page's screenshot and HTML in var/e2e-artifacts/<test-id>/, next
to the screenshots the journeys take of their key pages.
"""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.e2e.browser import (
    ACTION_TIMEOUT_MS,
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTALL_HINT,
    VIEWPORTS,
    Visit,
    artifact_dir,
)
from tests.smtp import SmtpServer

HERE = Path(__file__).parent
# A worker in another process cannot see SQLite's in-memory test database, so the real
# worker runs only on the PostgreSQL + Redis pass.
REAL_WORKER = bool(settings.CELERY_BROKER_URL) and not settings.DATABASES["default"][
    "ENGINE"
].endswith("sqlite3")


NOT_RUN = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if HERE in Path(item.fspath).parents]
    if ours and not CHROMIUM.exists():
        # Said once at the end of the run (pytest_terminal_summary), not once per test.
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if HERE not in Path(item.fspath).parents]
        config.stash[NOT_RUN] = len(ours)
        return
    for item in ours:
        item.add_marker(pytest.mark.e2e)
        # the live server (other threads) and a worker (another process) see committed rows
        item.add_marker(pytest.mark.django_db(transaction=True))
        if REAL_WORKER:
            item.add_marker(pytest.mark.real_broker)


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(NOT_RUN, 0):
        terminalreporter.write_sep("!", f"{config.stash[NOT_RUN]} browser tests NOT run", red=True)
        terminalreporter.write_line(INSTALL_HINT, yellow=True, bold=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or report.failed:
        item.stash.setdefault(OUTCOMES, {})[report.when] = report
    return report


OUTCOMES = pytest.StashKey[dict]()


# The browser -------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def browser():
    """One Chromium for all the browser tests, closed when they are done."""
    if not CHROMIUM.exists():
        pytest.skip(INSTALL_HINT)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, which Django takes for an
    # async context and refuses the ORM in; the tests' queries are synchronous all the same.
    with pytest.MonkeyPatch.context() as env, sync_playwright() as playwright:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(request) -> Path:
    return artifact_dir(request.node.nodeid)


@pytest.fixture(params=["phone", "desktop"])
def viewport(request) -> str:
    """Journeys run at a phone's width and a desktop's."""
    return request.param


@pytest.fixture
def browse(request, browser, site, artifacts):
    """`browse(label)` opens a new browser context (its own cookies: one person) and gives
    its page as a `Visit`. On failure, each open page's screenshot and HTML are saved."""
    viewport = (
        request.getfixturevalue("viewport") if "viewport" in request.fixturenames else ("desktop")
    )
    contexts, visits = [], []

    def open_visit(label: str = "", *, size: str | None = None) -> Visit:
        size = size or viewport
        context = browser.new_context(
            **VIEWPORTS[size],
            locale="ja-JP",
            timezone_id="Asia/Tokyo",
            accept_downloads=True,
            base_url=site.url,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        visit = Visit(
            page=page,
            base_url=site.url,
            artifacts=artifacts,
            viewport=size,
            label=f"{label}-" if label else "",
        )
        visits.append(visit)
        return visit

    yield open_visit

    outcomes = request.node.stash.get(OUTCOMES, {})
    failed = any(report.failed for report in outcomes.values())
    try:
        for visit in visits:
            visit.write_timings()
            if failed:
                _save_failure(visit)
        if not failed:
            for visit in visits:
                visit.assert_every_page_checked()
    finally:
        for context in contexts:
            context.close()


def _save_failure(visit: Visit) -> None:
    prefix = visit.artifacts / f"{visit.label}failure"
    try:
        visit.page.screenshot(path=f"{prefix}.png", full_page=True)
        Path(f"{prefix}.html").write_text(visit.page.content())
    except Exception as error:  # a crashed page: say so, keep the test's own failure
        Path(f"{prefix}.txt").write_text(f"could not save the page: {error!r}\n")


# The portal, its mail and its tasks ---------------------------------------------------------
@pytest.fixture(scope="package")
def mail_server():
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="package")
def task_worker(request, mail_server, live_server):
    """On the PostgreSQL + Redis pass, one real worker for all the browser tests, sending
    mail to `mail_server` and building links on the live server's address."""
    if not REAL_WORKER:
        yield None
        return
    request.getfixturevalue("django_db_setup")
    from tests.disclosure.test_worker_flow import Worker, clear_broker

    clear_broker()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"worker{os.environ.get('PYTEST_XDIST_WORKER', '')}.log"
    log.write_bytes(b"")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SITE_URL", live_server.url)
        worker = Worker(mail_server, log)
    try:
        yield worker
    finally:
        worker.stop()
        clear_broker()


class Site:
    def __init__(self, url: str, mail: SmtpServer, worker) -> None:
        self.url = url
        self.mail = mail
        self.worker = worker

    def wait_for(self, condition, what: str, timeout: float = 60) -> None:
        """For what a worker does after a page answered (eager tasks are done by then)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.worker is not None and self.worker.process.poll() is not None:
                pytest.fail(f"the worker exited:\n{self.worker.output()}")
            if time.monotonic() > deadline:
                log = self.worker.output() if self.worker is not None else "-"
                pytest.fail(f"{what}: not within {timeout} s\nworker: {log}")
            time.sleep(0.1)


@pytest.fixture
def site(live_server, settings, mail_server, task_worker, transactional_db):
    settings.SITE_URL = live_server.url
    # In-process tasks send from the server's threads; a worker has these in its environment.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = mail_server.host
    settings.EMAIL_PORT = mail_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    with mail_server._lock:
        mail_server.messages.clear()
    yield Site(live_server.url, mail_server, task_worker)
