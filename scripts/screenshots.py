"""Screenshots of the dashboard, a consent page and a request page for the README.

    .venv/bin/python scripts/screenshots.py [--out docs/images]

Builds the demo data in a throwaway SQLite database, serves it with `runserver`, and signs
in with Playwright driving Debian's Chromium (/usr/bin/chromium; no browser download).
Nothing outside --out is written; the database is deleted after.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "demo-pass-2026"  # noqa: S105 - the demo password printed by seed_demo
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Who is shown: the students whose demo requests are a disclosure (with live consents)
# and a cessation past its due date.
FIND_STUDENTS = """
from disclosure.models import DataRequest
for kind in ("disclosure", "cessation"):
    request = DataRequest.objects.filter(kind=kind).select_related("student").first()
    print(request.student.email, request.reference)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py
        [PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, text=True, **kwargs
    )


def _sign_in(page, base: str, email: str, *, admin: bool = False) -> None:
    if admin:
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("input[name=username]", email)
    else:
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form [type=submit]").last.click()
    page.wait_for_load_state("networkidle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BASE_DIR / "docs" / "images")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="screenshots-") as work:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{Path(work) / 'db.sqlite3'}",
            "CELERY_BROKER_URL": "",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
        }
        _manage(env, "migrate", "-v0")
        _manage(env, "seed_demo", stdout=subprocess.DEVNULL)
        output = _manage(env, "shell", "-c", FIND_STUDENTS, capture_output=True).stdout
        # `shell` may say how many models it imported: keep only our two lines.
        rows = [line.split() for line in output.splitlines() if "@" in line]
        (consenting, _), (ceasing, late_reference) = rows
        port = _free_port()
        server = subprocess.Popen(  # noqa: S603 - our own manage.py
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                shots = [
                    ("dashboard.png", "support@example.jp", True, "/admin/", (1280, 800)),
                    ("consent-page.png", consenting, False, "/consents/", (390, 844)),
                    (
                        "request-page.png",
                        ceasing,
                        False,
                        f"/requests/{late_reference}/",
                        (1280, 800),
                    ),
                ]
                for name, email, admin, path, (width, height) in shots:
                    context = browser.new_context(
                        viewport={"width": width, "height": height}, locale="ja-JP"
                    )
                    page = context.new_page()
                    _sign_in(page, base, email, admin=admin)
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    # A phone page is tall: show the top two screens' worth.
                    clip = {"x": 0, "y": 0, "width": width, "height": 2 * height}
                    page.screenshot(
                        path=str(args.out / name),
                        full_page=width < 800,
                        clip=clip if width < 800 else None,
                    )
                    print(f"{args.out / name}: {path} as {email} at {width}×{height}")
                    context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
