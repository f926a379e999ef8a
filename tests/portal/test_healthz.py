"""GET /healthz tells the load balancer whether this node can reach its database and its
broker, and says which one is down. The outages are real: the view runs in a process
whose settings point at a closed port, a missing directory, or a server that never answers."""

import json
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings

from portal.health import BROKER_TIMEOUT
from tests.ports import free_port

# The request's own time, measured in the process: a check that waited on a dead part would
# take far longer. Not the process's start-up, which a loaded machine stretches (CI runs
# two passes on both cores at once).
FAST = 6  # seconds
HEALTHZ = (
    "import time, django; django.setup(); from django.test import Client; "
    "started = time.monotonic(); r = Client().get('/healthz'); "
    "print(time.monotonic() - started); print(r.status_code); print(r.content.decode())"
)


def healthz_in_a_process(**env: str) -> tuple[int, dict, float]:
    try:
        result = subprocess.run(
            [sys.executable, "-c", HEALTHZ],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "ALLOWED_HOSTS": "testserver",
                "DEBUG": "0",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("/healthz hung instead of reporting the part that is down")
    assert result.returncode == 0, result.stderr
    elapsed, status, body = result.stdout.strip().splitlines()[-3:]
    return int(status), json.loads(body), float(elapsed)


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel completes the handshake) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.django_db
def test_it_answers_200_with_the_state_of_each_part(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]  # a cached "ok" would hide an outage
    body = response.json()
    assert body.keys() == {"status", "database", "broker"}
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "detail": "ok"}
    assert body["broker"]["ok"] is True
    if settings.CELERY_BROKER_URL:
        assert body["broker"]["detail"] == "ok"
    else:
        assert body["broker"]["detail"].startswith("none")


def test_it_answers_503_when_postgresql_refuses_connections():
    status, body, elapsed = healthz_in_a_process(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nope", CELERY_BROKER_URL=""
    )

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is False
    assert body["database"]["detail"].startswith("unreachable")
    assert body["broker"]["ok"] is True
    assert elapsed < FAST


def test_it_answers_503_when_the_sqlite_file_cannot_be_opened():
    status, body, _ = healthz_in_a_process(
        DATABASE_URL="sqlite:////nonexistent/dir/db.sqlite3", CELERY_BROKER_URL=""
    )

    assert status == 503
    assert body["database"]["ok"] is False
    assert body["broker"]["ok"] is True


def test_it_answers_503_soon_when_the_database_never_answers(silent_port):
    status, body, elapsed = healthz_in_a_process(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{silent_port}/nope",
        DATABASE_CONNECT_TIMEOUT="2",
        CELERY_BROKER_URL="",
    )

    assert status == 503
    assert body["database"]["ok"] is False
    assert elapsed < FAST


def test_it_answers_503_when_the_broker_refuses_connections(tmp_path):
    status, body, elapsed = healthz_in_a_process(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
    )

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"] == {"ok": True, "detail": "ok"}
    assert body["broker"]["ok"] is False
    assert body["broker"]["detail"].startswith("unreachable")
    assert elapsed < FAST


def test_it_answers_503_soon_when_the_broker_never_answers(tmp_path, silent_port):
    status, body, elapsed = healthz_in_a_process(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{silent_port}/0",
    )

    assert status == 503
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert BROKER_TIMEOUT <= elapsed < FAST
