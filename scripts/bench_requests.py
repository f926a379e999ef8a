"""Data-rights request timings: the disclosure PDF. (Passing requests on to the companies and
filing them: scripts/bench_dispatch.py.)

    DATABASE_URL=postgres://... .venv/bin/python scripts/bench_requests.py

The disclosure report of the demo student with the most activity records: the time of our
whole `disclosure_report_files` (the queries, the template, WeasyPrint) beside WeasyPrint
alone turning the same HTML, rendered once beforehand, into a PDF. The ratio is our
overhead. The same again for a student with `--large-records` activity records. The
requests are made inside a transaction that is rolled back: nothing is left behind.
"""

import argparse
import io
import logging
import os
import statistics
import sys
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

# whitenoise warns about a missing STATIC_ROOT when collectstatic has not run; irrelevant here.
warnings.filterwarnings("ignore", "No directory at")
django.setup()

from benchlib import in_process_tasks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from disclosure.models import DataRequest  # noqa: E402
from disclosure.reports import disclosure_report_files, disclosure_report_html  # noqa: E402
from portal.models import ActivityRecord, Employer, User  # noqa: E402
from portal.shared.pdf import STATIC_SCHEME, STYLESHEET, pdf_url_fetcher  # noqa: E402

BENCH_DOMAIN = "bench.example.jp"
DISPATCH_STUDENT = f"bench-dispatch@{BENCH_DOMAIN}"
MANY_STUDENT = "bench-request-{:05d}@" + BENCH_DOMAIN
COMPANY_EMAIL = "privacy-{:03d}@" + BENCH_DOMAIN
CANCEL_REASON = "benchmark run finished (scripts/bench_requests.py)"
WORKER_START_TIMEOUT = 60


class Rollback(Exception):
    pass


def median_ms(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


# --- the disclosure PDF --------------------------------------------------------------------


def largest_demo_student() -> User | None:
    row = (
        ActivityRecord.objects.exclude(student__email__startswith="bulk-")
        .exclude(student__email__endswith="@" + BENCH_DOMAIN)
        .filter(student__is_staff=False)
        .values("student_id")
        .annotate(n=Count("id"))
        .order_by("-n", "student_id")
        .first()
    )
    return User.objects.get(pk=row["student_id"]) if row else None


def bench_request(student: User, delivery_format: str) -> DataRequest:
    """A disclosure request row for the report functions; made inside the rolled-back
    transaction, not through request_file (no emails, no tasks, no duplicate check)."""
    now = timezone.now()
    return DataRequest.objects.create(
        reference=f"BENCH-{uuid.uuid4().hex[:8].upper()}",
        student=student,
        kind=DataRequest.Kind.DISCLOSURE,
        delivery_format=delivery_format,
        language=student.language,
        submitted_at=now,
        due_at=now + timedelta(days=14),
        status=DataRequest.Status.IN_PROGRESS,
    )


def plain_weasyprint(html: str) -> bytes:
    """The same HTML and stylesheet through WeasyPrint with nothing kept between documents
    (pdf_bytes keeps the parsed stylesheet and its fonts)."""
    from weasyprint import CSS, HTML

    sheet = CSS(url=STYLESHEET, url_fetcher=pdf_url_fetcher())
    document = HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=pdf_url_fetcher())
    return document.write_pdf(stylesheets=[sheet])


def time_report(student: User, repeat: int) -> dict:
    pdf_request = bench_request(student, DataRequest.Format.PDF)
    json_request = bench_request(student, DataRequest.Format.JSON)
    # warm-up; the CSV of the activity records comes with the PDF
    [(_kind, _name, _type, pdf), _csv] = disclosure_report_files(request_id=pdf_request.pk)
    html = disclosure_report_html(request_id=pdf_request.pk)
    plain_weasyprint(html)
    ours, static, json_times = [], [], []
    for _ in range(repeat):  # interleaved, so both see the same machine
        started = time.perf_counter()
        disclosure_report_files(request_id=pdf_request.pk)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        plain_weasyprint(html)
        static.append(time.perf_counter() - started)
        started = time.perf_counter()
        disclosure_report_files(request_id=json_request.pk)
        json_times.append(time.perf_counter() - started)
    from pypdf import PdfReader  # a dev dependency; only to count the pages

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    return {
        "records": ActivityRecord.objects.filter(student=student).count(),
        "pages": pages,
        "pdf_kb": len(pdf) / 1024,
        "html_kb": len(html.encode()) / 1024,
        "ours": median_ms(ours),
        "static": median_ms(static),
        "json": median_ms(json_times),
    }


def bench_report(repeat: int, large_records: int) -> None:
    student = largest_demo_student()
    if student is None:
        print("disclosure PDF: no demo student with activity records (run seed_demo)")
        return
    results = []
    try:
        with transaction.atomic():
            results.append((student.email, time_report(student, repeat)))
            if large_records:
                big = User.objects.create_user(
                    email=f"bench-large-{uuid.uuid4().hex[:8]}@{BENCH_DOMAIN}",
                    display_name="ベンチ 大量",
                    language=student.language,
                )
                employers = list(Employer.objects.order_by("pk")[:12])
                start = timezone.now() - timedelta(days=365)
                ActivityRecord.objects.bulk_create(
                    ActivityRecord(
                        student=big,
                        employer=employers[n % len(employers)] if employers and n % 3 else None,
                        kind=ActivityRecord.Kind.JOB_VIEW,
                        detail=f"求人閲覧: ベンチ記録 {n:05d}",
                        occurred_at=start + timedelta(minutes=7 * n),
                    )
                    for n in range(large_records)
                )
                results.append(
                    (
                        f"{large_records:,} records (synthetic)",
                        time_report(big, max(1, repeat // 3)),
                    )
                )
            raise Rollback
    except Rollback:
        pass
    print(
        f"disclosure report, median of {repeat} runs ({max(1, repeat // 3)} for the large one);"
        " 'ours' is disclosure_report_files (queries + template + WeasyPrint), 'static' is"
        " WeasyPrint alone on the same HTML rendered beforehand"
    )
    print(
        f"{'student':<34}{'records':>8}{'pages':>6}{'PDF kB':>8}{'ours ms':>9}"
        f"{'static ms':>10}{'ratio':>7}{'JSON ms':>9}"
    )
    for name, r in results:
        print(
            f"{name:<34}{r['records']:>8,}{r['pages']:>6}{r['pdf_kb']:>8.0f}{r['ours']:>9.0f}"
            f"{r['static']:>10.0f}{r['ours'] / r['static']:>7.2f}{r['json']:>9.1f}"
        )


def main() -> None:
    # The seeding's in-process tasks log each run, and the settings' root logger shows INFO.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each PDF timing")
    parser.add_argument("--large-records", type=int, default=2000, help="0 to skip")
    args = parser.parse_args()
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")

    call_command("migrate", verbosity=0)
    if not User.objects.filter(email__startswith="student0").exists():
        with in_process_tasks():
            call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    users = User.objects.count()
    print(f"database: {connection.vendor}; {users:,} users")
    bench_report(args.repeat, args.large_records)


if __name__ == "__main__":
    main()
