"""scripts/bench_dispatch.py's processes: its prefork worker and gunicorn, each started and
ready, and the wait for the company emails at the SMTP sink (the sink, starting and stopping
are benchlib's). Imported by it once Django is set up."""

import http.client
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchlib import BASE_DIR, REFERENCE, Sink, celery_env, start_worker, wait_ready
from django.conf import settings


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
def start_dispatch_worker(
    sink: Sink, log: Path, concurrency: int, nice: int = 0
) -> subprocess.Popen:
    """A prefork worker, as deployed, with the no-op task of the baseline loaded too."""
    return start_worker(
        sink,
        log,
        pool="prefork",
        concurrency=concurrency,
        env=celery_env(sink, PYTHONPATH=str(BASE_DIR / "scripts")),
        include=("bench_noop",),
        nice=nice,
    )


# Each request's own time in gunicorn (%(D)s, microseconds: from its request parsed to its
# response written), by the bench's X-Bench header: the server's time, apart from the
# client's (a new connection a request, and the client sharing this process with the SMTP
# server the worker is sending to).
ACCESS_FORMAT = "%({x-bench}i)s %(s)s %(D)s"


def start_gunicorn(
    port: int, workers: int, log: Path, access_log: Path | None = None
) -> subprocess.Popen:
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
    if access_log is not None:
        command += [f"--access-logfile={access_log}", f"--access-logformat={ACCESS_FORMAT}"]
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
