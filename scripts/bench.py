"""Page timings on a large data set: `make bench` (see the Makefile for the knobs).

Seeds `--students` bulk students (idempotent), then requests each student page many times
through Django's full stack (middleware, sessions, templates) in-process and prints
latency percentiles and requests per second. Uses whatever DATABASE_URL says.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

# whitenoise warns about a missing STATIC_ROOT when collectstatic has not run; irrelevant here.
warnings.filterwarnings("ignore", "No directory at")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from consent.models import PolicyAcceptance  # noqa: E402


def measure(client: Client, url: str, count: int) -> list[float]:
    client.get(url)  # warm up caches and the template loader
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    settings.ALLOWED_HOSTS.append("testserver")
    # Static URLs without collectstatic's manifest; the pages are what is measured.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    call_command("seed_demo", students=args.students, verbosity=0)

    # The student with the longest acceptance history: the page must not care.
    acceptance = (
        PolicyAcceptance.objects.filter(student__email__startswith="bulk-")
        .order_by("-student_id")
        .select_related("student")
        .first()
    )
    student = acceptance.student
    client = Client()
    client.force_login(student)
    pages = [
        ("My privacy policies", reverse("consent:policy_list"), args.requests),
        (
            "Acceptance, full text",
            reverse("consent:acceptance_detail", args=[acceptance.receipt_id]),
            args.requests,
        ),
        (
            "Receipt JSON",
            reverse("consent:receipt_json", args=[acceptance.receipt_id]),
            args.requests,
        ),
        ("Receipt PDF", reverse("consent:receipt_pdf", args=[acceptance.receipt_id]), 10),
        ("Public policy text", reverse("consent:version_text", args=["2019.03"]), args.requests),
    ]
    students = type(student).objects.count()
    acceptances = PolicyAcceptance.objects.count()
    print(f"database: {connection.vendor}; {students:,} users, {acceptances:,} acceptances")
    print(f"{'page':<24}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}")
    for name, url, count in pages:
        timings = sorted(measure(client, url, count))
        p50 = statistics.median(timings) * 1000
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))] * 1000
        rate = len(timings) / sum(timings)
        print(f"{name:<24}{count:>9}{p50:>9.1f}{p95:>9.1f}{rate:>9.1f}")


if __name__ == "__main__":
    main()
