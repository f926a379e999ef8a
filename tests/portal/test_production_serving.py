"""The production stack for real: collectstatic, then gunicorn + whitenoise with DEBUG off."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """One server for the module's tests, which only read from it: collectstatic and the
    migrations cost 15 s of a loaded CI pass each time."""
    tmp_path = tmp_path_factory.mktemp("production")
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "CELERY_BROKER_URL": "",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "portal.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                _get(base + "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        yield base, tmp_path / "static"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gunicorn_serves_the_health_check_the_pages_and_hashed_static_files(gunicorn):
    base, static_root = gunicorn

    status, _, body = _get(base + "/healthz")
    assert status == 200
    assert json.loads(body)["database"]["ok"] is True

    status, _, body = _get(base + "/")
    assert status == 200
    assert '<html lang="ja">' in body.decode()

    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["portal/portal.css"]
    assert hashed != "portal/portal.css"
    assert f"/static/{hashed}" in body.decode()
    status, headers, _ = _get(f"{base}/static/{hashed}")
    assert status == 200
    assert "max-age=315360000" in headers.get("Cache-Control", "")


def test_pages_and_static_files_carry_the_browser_security_headers(gunicorn):
    # whitenoise answers static files itself, but inside the middleware that adds these.
    base, static_root = gunicorn
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    for path in ("/", "/accounts/login/", f"/static/{manifest['portal/admin.js']}"):
        status, headers, _ = _get(base + path)
        assert status == 200, path
        assert "script-src 'self'" in headers.get("Content-Security-Policy", ""), path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Cross-Origin-Resource-Policy") == "same-origin", path
        assert headers.get("Cross-Origin-Opener-Policy") == "same-origin", path
        assert headers.get("Referrer-Policy") == "same-origin", path
        assert "camera=()" in headers.get("Permissions-Policy", ""), path
