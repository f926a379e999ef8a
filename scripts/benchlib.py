"""What the benchmark scripts share: their own PostgreSQL database, a report that prints each
figure with its goal, a real `celery worker` beside an SMTP server on loopback, and filing a
deletion as fast as the portal takes it.

The bench_scale package imports this before django.setup() (to create its database first), so
the portal's models are imported inside the functions that use them.
"""

import contextlib
import email.policy
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path

import dj_database_url
import psycopg
from django.db import connection
from psycopg import sql

from tests.smtp import SmtpServer

BASE_DIR = Path(__file__).resolve().parent.parent
SLOW_QUERY = 0.100  # seconds: any query over this is printed with its plan
WORKER_START_TIMEOUT = 60


# --- the database -----------------------------------------------------------------------------


def database_ensure(url: str, *, drop: bool) -> None:
    """Create the benchmark's database if it is missing (or drop it first with --reload)."""
    config = dj_database_url.parse(url)
    name = config["NAME"]
    with _admin_connection(config) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", file=sys.stderr)


def database_drop(url: str) -> None:
    """Drop the benchmark's database (its connections are closed first)."""
    config = dj_database_url.parse(url)
    with _admin_connection(config) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(config["NAME"])
            )
        )


def _admin_connection(config: dict) -> psycopg.Connection:
    return psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


# --- the report -------------------------------------------------------------------------------


class Report:
    """Prints each figure with its goal and ok/FAIL, and the plan of every slow query.
    `load=True` ends each line with the machine's load average over the last minute."""

    def __init__(self, *, load: bool = False):
        self.failed: list[str] = []
        self.explained: set[str] = set()
        self.slow: list[tuple[str, float, str]] = []
        self.load = load

    def line(self, name: str, figures: str, goal: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        if self.load:
            load = os.getloadavg()[0]
            print(f"{name:<44} {figures:<56} {goal:<32} {verdict:<4} load {load:.1f}", flush=True)
        else:
            print(f"{name:<46} {figures:<30} {goal:<18} {verdict}", flush=True)

    def timing(self, name: str, timings: list[float], goal_ms: float | None, extra: str = ""):
        ordered = sorted(timings)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        digits = 1 if p95 < 100 else 0  # a tenth of a millisecond where it tells something
        figures = f"p50 {p50:>6.{digits}f} ms  p95 {p95:>6.{digits}f} ms {extra}"
        goal = f"goal < {goal_ms:,.0f} ms" if goal_ms else ""
        self.line(name, figures, goal, None if goal_ms is None else p95 < goal_ms)

    def capture(self, name: str, queries: list[dict]) -> None:
        for query in queries:
            seconds = float(query["time"])
            if seconds > SLOW_QUERY:
                self.slow.append((name, seconds, query["sql"]))

    def explain_slow(self) -> None:
        for name, seconds, statement in self.slow:
            key = statement[:2000]
            if key in self.explained:
                continue
            self.explained.add(key)
            print(f"\n-- {name}: a query took {seconds * 1000:.0f} ms:\n{statement[:1500]}")
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                print("\n".join(row[0] for row in cursor.fetchall()))
        self.slow.clear()


def as_web_process() -> None:
    """Pages requested in-process (django.test.Client) as a web process serves them: static
    files without a manifest (no collectstatic), and one database connection for the whole
    run, as a web process with CONN_MAX_AGE keeps it, with a query log that a request's
    start does not empty (CaptureQueriesContext reads it)."""
    from django.conf import settings
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    settings.ALLOWED_HOSTS.append("testserver")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)


# --- a real worker and an SMTP server on loopback ---------------------------------------------


_HEADERS = BytesHeaderParser(policy=email.policy.compat32)


def addressed(content: bytes) -> tuple[str, str]:
    """A message's To and Subject (decoded, its folding undone), from its headers alone.

    A benchmark's SMTP server only counts arrivals, as a relay passes them on without
    reading their parts. Parsing the whole message with the standard library's modern
    policy (tests/smtp.py, where tests read what was sent) cost 1.7 ms a message, twice
    what the worker spends making it; the headers, the old policy: 0.08 ms. The server
    runs in the benchmark's own process, on the same two cores as the portal and at the
    same priority as its web, so what it spent there was taken from what it measured."""
    headers = _HEADERS.parsebytes(content)
    subject = str(make_header(decode_header(headers["Subject"] or "")))
    return " ".join((headers["To"] or "").split()), " ".join(subject.split())


class Sink(SmtpServer):
    """The test SMTP server, noting when each message arrived, to whom and about what; the
    messages themselves are not kept (a wave brings 76,000 of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        to, subject = addressed(envelope.content)
        with self._lock:
            self.attempts += 1
            self.arrivals.append((time.perf_counter(), to, subject))
        return "250 OK"

    def snapshot(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.arrivals)

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def since(self, start: int) -> list[tuple[float, str, str]]:
        with self._lock:
            return self.arrivals[start:]


@contextlib.contextmanager
def in_process_tasks():
    """Setup runs its tasks here, emails to nowhere: nothing reaches the broker before the
    worker starts (the receipts of the bench grants are not what is measured)."""
    from django.test.utils import override_settings

    from portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            yield
    finally:
        app.conf.task_always_eager = previous


def celery_env(sink: SmtpServer, **overrides: str) -> dict:
    """The environment of a worker or beat: this process's database and broker, email to
    `sink`."""
    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": settings.DATABASE_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": sink.host,
        "EMAIL_PORT": str(sink.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore:No directory at",
        **overrides,
    }


def start_worker(
    sink: SmtpServer,
    log: Path,
    *,
    pool: str = "solo",
    concurrency: int = 1,
    env: dict | None = None,
    include: tuple[str, ...] = (),
    nice: int = 0,
) -> subprocess.Popen:
    """A real `celery worker` (`--pool=solo`, or prefork with `concurrency` processes),
    started and ready, sending its email to `sink`; with the modules `include` loaded too,
    at `nice` (the service unit's `Nice=10`, docs/operations.md)."""
    options = ["--pool=solo"] if pool == "solo" else [f"--pool={pool}", f"-c{concurrency}"]
    command = [
        *(["nice", "-n", str(nice)] if nice else []),
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "portal",
        "worker",
        *options,
        *(option for module in include for option in ("-I", module)),
        "-l",
        "info",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-n",
        f"bench-{uuid.uuid4().hex[:8]}@%h",
    ]
    return start_celery(command, log, env or celery_env(sink), ready=" ready.", what="the worker")


def start_beat(log: Path, env: dict) -> subprocess.Popen:
    """A real `celery beat`, its schedule file beside its log."""
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "portal",
        "beat",
        "-l",
        "info",
        "-s",
        str(log.with_suffix(".schedule")),
        "--pidfile=",
    ]
    return start_celery(command, log, env, ready="beat: Starting...", what="beat")


def start_celery(
    command: list[str], log: Path, env: dict, *, ready: str, what: str
) -> subprocess.Popen:
    """Started and ready: `ready` printed to `log`. The log is appended to, so one log can
    hold a worker started again; only what this start printed is read."""
    with log.open("ab") as output:
        start = log.stat().st_size
        process = subprocess.Popen(  # noqa: S603 - our own venv's celery
            command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    wait_ready(process, log, lambda: ready in log.read_text(errors="replace")[start:], what)
    return process


def wait_ready(process: subprocess.Popen, log: Path, ready, what: str) -> None:
    """Until `ready()` is true; the log's tail if the process exits or takes too long."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(
                f"{what} was not ready within {WORKER_START_TIMEOUT} s:\n{tail(log)}"
            )
        time.sleep(0.1)


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM (a worker's warm shutdown finishes its tasks), SIGKILL after 30 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def tail(log: Path, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else ""


# --- filing -----------------------------------------------------------------------------------

# A request's reference, as request_file makes it (R-<date>-<hex digits>).
REFERENCE = re.compile(r"R-\d{6}-[0-9A-F]+")
REFERENCE_COLLISIONS = 0


def file_deletion(student):
    """request_file, filed again if the random reference collided with an earlier one
    (R-<date>-<hex digits>: rare, but a benchmark files thousands in a day)."""
    global REFERENCE_COLLISIONS
    from django.db import IntegrityError

    from disclosure.models import DataRequest
    from disclosure.services import request_file

    for attempt in range(3):
        try:
            return request_file(student=student, kind=DataRequest.Kind.DELETION)
        except IntegrityError as exc:
            if "reference" not in str(exc) or attempt == 2:
                raise
            REFERENCE_COLLISIONS += 1
    raise AssertionError("unreachable")
