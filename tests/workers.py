"""A real `celery -A portal worker` process for the tests marked `real_broker`.

It runs against the test database pytest-django created (PostgreSQL only: a worker in
another process cannot see SQLite's in-memory database) and sends email to `smtp`.
"""

import os
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
