"""scripts/bench_dispatch.py's processes: the SMTP sink it counts emails at, a prefork worker
and gunicorn, each started and ready. Imported by it once Django is set up."""

import http.client
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from django.conf import settings

from tests.smtp import SmtpServer

BASE_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60
REFERENCE = re.compile(r"R-\d{6}-[0-9A-F]+")


# --- the SMTP server ----------------------------------------------------------------------------
class Sink(SmtpServer):
    """The test SMTP server, noting when each message arrived, to whom and about what."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            with self._lock:
                message = self.messages.pop()  # kept as arrivals only: 10,000s of them
                self.arrivals.append(
                    (time.perf_counter(), str(message["To"]), str(message["Subject"]))
                )
        return reply

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def since(self, start: int) -> list[tuple[float, str, str]]:
        with self._lock:
            return self.arrivals[start:]


def wait_for_company_emails(
    sink: Sink, start: int, references: set[str], addresses: set[str], expected: int, timeout: float
) -> tuple[list[float], Counter, bool]:
    """Arrival times of the emails to the bench companies about `references` that arrived
    after the sink's `start`-th message, until `expected` arrived or the timeout; and how
    often each (company, reference) arrived."""
    deadline = time.monotonic() + timeout
    seen, times, pairs = start, [], Counter()
    while True:
        arrivals = sink.since(seen)
        for at, to, subject in arrivals:
            found = REFERENCE.search(subject)
            if to in addresses and found and found.group() in references:
                times.append(at)
                pairs[(to, found.group())] += 1
        seen += len(arrivals)
        if len(times) >= expected:
            return sorted(times), pairs, True
        if time.monotonic() > deadline:
            return sorted(times), pairs, False
        time.sleep(0.05)


# --- the processes ------------------------------------------------------------------------------
def tail(log: Path, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else ""


def wait_ready(process: subprocess.Popen, log: Path, ready, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"{what} was not ready within {START_TIMEOUT} s:\n{tail(log)}")
        time.sleep(0.1)


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_worker(sink: Sink, log: Path, concurrency: int, nice: int = 0) -> subprocess.Popen:
    """A prefork worker, as deployed, with the no-op task of the baseline loaded too; at
    `nice` (the service unit's `Nice=10`, docs/operations.md: the web's requests first)."""
    env = {
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
        "PYTHONPATH": str(BASE_DIR / "scripts"),
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    command = [
        *(["nice", "-n", str(nice)] if nice else []),
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "portal",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "-I",
        "bench_noop",
        "-l",
        "info",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-n",
        f"bench-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log.open("ab") as output:
        start = log.stat().st_size
        worker = subprocess.Popen(  # noqa: S603 - our own venv's celery
            command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    wait_ready(
        worker,
        log,
        lambda: " ready." in log.read_text(errors="replace")[start:],
        "the worker",
    )
    return worker


def start_gunicorn(port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions made here are signed with it
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": settings.DATABASE_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CACHE_URL": settings.CACHE_URL,
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "-c",
        "portal/gunicorn_conf.py",
        "portal.wsgi",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--log-level=warning",
    ]
    with log.open("ab") as output:
        server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/healthz")
            ok = probe.getresponse().status == 200
            probe.close()
            return ok
        except OSError:
            return False

    wait_ready(server, log, answers, "gunicorn")
    return server
