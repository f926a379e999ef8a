"""The parts a fault scenario breaks, each private to the test: a redis-server and a
PostgreSQL cluster on free loopback ports, real `celery worker` and `celery beat` processes
pointed at them, and the means to count what came out (emails per company, the queue's
length). Nothing here touches the shared PostgreSQL (5432) or Redis (6379).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from kombu import pools

from portal.celery import app
from portal.shared import queueing
from tests.ports import free_port
from tests.smtp import SmtpServer
from tests.workers import BASE_DIR, LogFile, database_url

HOST = "127.0.0.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CELERY = Path(sys.executable).parent / "celery"
DEADLINE = 90  # seconds, for any one wait


# Waiting -------------------------------------------------------------------------------------
def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout: float = DEADLINE,
    poll: float = 0.1,
    processes: tuple = (),
    details: Callable[[], str] = lambda: "",
) -> None:
    """Poll `condition` (which may query the database: a database that is restarting only
    makes it retry) until it holds; fail with the logs of `processes` if it does not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (OperationalError, InterfaceError):
            connection.close()  # the next query reconnects
        for process in processes:
            if process.process.poll() is not None:
                pytest.fail(
                    f"{process.name} exited ({process.process.returncode}) {what}:\n"
                    f"{process.output()}"
                )
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}:\n{p.output()}" for p in processes)
            pytest.fail(f"{what}: not within {timeout} s. {details()}\n{logs}")
        time.sleep(poll)


# Redis ---------------------------------------------------------------------------------------
class PrivateRedis:
    """A redis-server of the test's own, without persistence: stopping it loses what it
    held, as a broker that crashed and came back empty would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = directory / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, db=0, socket_timeout=5)

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a shutdown: nothing is saved (--save "")
            self.process.wait(timeout=10)

    def flush(self) -> None:
        self.client.flushall()

    def queue_length(self, queue: str = "celery") -> int:
        return self.client.llen(queue)

    def queued_tasks(self, queue: str = "celery") -> Counter:
        """What the queue holds, by task name (kombu's Redis transport keeps JSON messages)."""
        names = Counter()
        for raw in self.client.lrange(queue, 0, -1):
            names[json.loads(raw).get("headers", {}).get("task", "?")] += 1
        return names

    def unacked(self) -> int:
        """Messages a worker has taken but not yet acknowledged (kombu's Redis transport)."""
        return self.client.hlen("unacked")


# PostgreSQL ----------------------------------------------------------------------------------
def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl) on a free port, trust auth on
    loopback, which the test stops, starts and restarts."""

    def __init__(self) -> None:
        # The postgres user must reach the data directory: pytest's tmp_path is root's only.
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.sockets = self.root / "sockets"
        for directory in (self.data, self.sockets):
            directory.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            for path in (self.data, self.sockets, self.log):
                shutil.chown(path, "postgres", "postgres")
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def _run(self, command: list[str]) -> None:
        subprocess.run(_as_postgres(command), check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={HOST} -k {self.sockets} -c fsync=off"
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client and shuts down; `immediate` is a crash."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)

    def copy_database(self, source: dict) -> None:
        """Create `source`'s database here with its schema and rows (pg_dump | psql)."""
        name = source["NAME"]
        env = {**os.environ, "PGPASSWORD": source.get("PASSWORD") or ""}
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )
        dump = subprocess.Popen(
            [
                str(PG_BIN / "pg_dump"),
                "-h",
                source["HOST"] or HOST,
                "-p",
                str(source["PORT"] or 5432),
                "-U",
                source["USER"] or "postgres",
                "--no-owner",
                name,
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                name,
            ],
            stdin=dump.stdout,
            check=True,
            capture_output=True,
        )
        assert dump.wait() == 0


# Celery processes ----------------------------------------------------------------------------
class CeleryProcess:
    """`celery -A portal worker` or `beat` in a subprocess, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path) -> None:
        self.name = name
        self.log = log
        self.reader = LogFile(log, start=log.stat().st_size if log.exists() else 0)
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
            )

    def output(self, tail: int = 6000) -> str:
        """The end of the log, for a failure's message; waits ask `has_printed`."""
        return self.reader.tail(tail)

    def has_printed(self, text: str) -> bool:
        """Whether the process has printed `text` anywhere in its log, however much it
        printed since (a tail could miss it: issue 16)."""
        return self.reader.has_printed(text)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)


class Stack:
    """The environment every process of a scenario shares: the private broker, a database
    (the pytest-django test database, or the private cluster's copy of it), the loopback
    SMTP server, and short sweep intervals."""

    def __init__(self, *, broker: PrivateRedis, smtp: SmtpServer, directory: Path) -> None:
        self.broker = broker
        self.smtp = smtp
        self.directory = directory
        self.processes: list[CeleryProcess] = []
        self.timing = {
            "QUEUE_LEASE_SECONDS": "900",
            "REQUESTS_SWEEP_SECONDS": "2",
            "EMAIL_SWEEP_SECONDS": "2",
        }

    def env(self, **overrides: str) -> dict:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": self.broker.url(),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.smtp.host,
            "EMAIL_PORT": str(self.smtp.port),
            "EMAIL_USE_TLS": "0",
            "EMAIL_USE_SSL": "0",
            "EMAIL_TIMEOUT": "5",
            "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
            "LOG_LEVEL": "INFO",
            **self.timing,
            **overrides,
        }

    def worker(self, *, ready: bool = True, **overrides: str) -> CeleryProcess:
        name = f"worker-{len(self.processes)}"
        command = [
            str(CELERY),
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"faults-{uuid.uuid4().hex[:8]}@%h",
        ]
        process = CeleryProcess(
            name, command, self.env(**overrides), self.directory / f"{name}.log"
        )
        self.processes.append(process)
        if ready:
            wait_until(
                lambda: process.has_printed(" ready."), f"{name} start-up", processes=(process,)
            )
        return process

    def beat(self, **overrides: str) -> CeleryProcess:
        name = f"beat-{len(self.processes)}"
        schedule = self.directory / f"{name}-schedule"
        command = [
            str(CELERY),
            "-A",
            "portal",
            "beat",
            "-l",
            "info",
            "-s",
            str(schedule),
            "--pidfile=",
        ]
        process = CeleryProcess(
            name, command, self.env(**overrides), self.directory / f"{name}.log"
        )
        self.processes.append(process)
        wait_until(
            lambda: process.has_printed("beat: Starting..."),
            f"{name} start-up",
            processes=(process,),
        )
        return process

    def processes_running(self) -> list[CeleryProcess]:
        return [p for p in self.processes if p.process.poll() is None]

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}:\n{p.output()}" for p in self.processes)


# The test process publishes to the private broker too ----------------------------------------
def reset_publishing() -> None:
    """Forget the broker connections this process holds, so the next publish connects to
    the broker the configuration names now."""
    # Celery's pool lives in kombu's registry, keyed by the broker's URL: closing it alone
    # would leave a closed pool there for the next test that publishes to the same broker.
    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    # After a failed publish the publisher skips publishing for a while (its breaker): a
    # test starts with it closed.
    queueing._broker_down_until = 0.0


def point_celery_at(url: str, monkeypatch) -> None:
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setattr(app.conf, "broker_url", url)
    reset_publishing()


# Counting ------------------------------------------------------------------------------------
SWEEPS = {"portal.tasks.email_sweep", "disclosure.tasks.requests_sweep"}


def discarded_sweeps(processes) -> int:
    """Sweeps the workers dropped unrun because a newer one was due (the beat entries'
    `expires`), from their logs."""
    pattern = re.compile(
        r"Discarding revoked task: (portal\.tasks\.email_sweep|disclosure\.tasks\.requests_sweep)\["
    )
    return sum(p.reader.count(pattern) for p in processes if p.name.startswith("worker"))


def subject_of(message) -> str:
    return " ".join(str(message["Subject"]).split())


def mails_by_kind(smtp: SmtpServer, addresses: list[str]) -> dict[str, list[str]]:
    """For each address, the kinds of the emails it received, in the order they arrived
    ("company_request", "company_reminder", ...), told apart by the stored rows' subjects."""
    from portal.models import EmailMessage

    kinds = {
        (to, " ".join(subject.split())): kind.split(":")[0]
        for to, subject, kind in EmailMessage.objects.filter(to__in=addresses).values_list(
            "to", "subject", "kind"
        )
    }
    return {
        to: [kinds.get((to, subject_of(m)), f"? {subject_of(m)}") for m in smtp.received(to)]
        for to in addresses
    }


def received_counts(smtp: SmtpServer, addresses: list[str]) -> Counter:
    wanted = set(addresses)
    with smtp._lock:
        return Counter(m["To"] for m in smtp.messages if m["To"] in wanted)


class QueueSampler:
    """Samples `LLEN celery` on the private broker in a thread while the system runs, with
    (optionally) the number of units of due work at that moment, from `due()`."""

    def __init__(self, broker: PrivateRedis, *, interval: float = 0.05) -> None:
        self.broker = broker
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = self.broker.client
        while not self._stop.is_set():
            try:
                self.samples.append(client.llen("celery"))
            except redis.RedisError:
                pass  # the broker is down for this scenario's fault
            self._stop.wait(self.interval)

    def __enter__(self) -> "QueueSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)
