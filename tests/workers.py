"""A real `celery -A portal worker` process for the tests marked `real_broker`.

It runs against the test database pytest-django created (PostgreSQL only: a worker in
another process cannot see SQLite's in-memory database) and sends email to `smtp`.
"""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.smtp import SmtpServer

BASE_DIR = Path(settings.BASE_DIR)

REAL_WORKER_MARKS = [
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL,
        reason="needs a broker: set CELERY_BROKER_URL=redis://... (CI's PostgreSQL+Redis pass)",
    ),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="a worker in another process cannot see SQLite's in-memory test database "
        "(set DATABASE_URL=postgres://...)",
    ),
    pytest.mark.django_db(transaction=True),  # the worker reads only committed rows
    pytest.mark.real_broker,
]


class LogFile:
    """A process's log file, read so that no line can be missed.

    `has_printed(text)` scans every byte written since its last call for that text (reading
    back a little, for a line split between two reads) and remembers once it has seen it.
    Reading only the log's tail is not enough: a process can print more than the tail
    between two polls (a worker coming back to a queue of waiting sweeps does), and the line
    scrolls out of the window (issue 16)."""

    def __init__(self, path: Path, *, start: int = 0) -> None:
        self.path = path
        self._start = start  # a log appended to by an earlier process: read after its lines
        self._scanned: dict[bytes, int] = {}  # text -> offset scanned up to
        self._seen: set[bytes] = set()

    def has_printed(self, text: str) -> bool:
        needle = text.encode()
        if needle in self._seen:
            return True
        start = max(self._start, self._scanned.get(needle, self._start) - len(needle) + 1)
        with self.path.open("rb") as log:
            log.seek(start)
            fresh = log.read()
        self._scanned[needle] = start + len(fresh)
        if needle in fresh:
            self._seen.add(needle)
            return True
        return False

    def count(self, pattern: "re.Pattern[str]") -> int:
        """How often `pattern` occurs in the whole log."""
        return len(pattern.findall(self.path.read_text(errors="replace")))

    def tail(self, characters: int = 6000) -> str:
        """The end of the log, for a failure's message (never for deciding anything)."""
        return self.path.read_text(errors="replace")[-characters:]


def database_url(db: dict) -> str:
    """The URL of the test database pytest-django created, for the worker's settings."""
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"


def start_worker(
    smtp: SmtpServer, log: Path, *, mode: str = "wb", extra_env: dict | None = None
) -> subprocess.Popen:
    """Start a solo-pool worker writing its log to `log` (`mode` "ab" to append)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp.host,
        "EMAIL_PORT": str(smtp.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        **(extra_env or {}),
    }
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "portal",
        "worker",
        "--pool=solo",
        "-l",
        "info",
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"pytest-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log.open(mode) as output:
        return subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
