"""Data-rights request timings: the disclosure PDF, and dispatch to companies by a real worker.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python scripts/bench_requests.py

1. The disclosure report of the demo student with the most activity records: the time of our
   whole `disclosure_report_files` (the queries, the template, WeasyPrint) beside WeasyPrint
   alone turning the same HTML, rendered once beforehand, into a PDF. The ratio is our
   overhead. The same again for a student with `--large-records` activity records. The
   requests are made inside a transaction that is rolled back: nothing is left behind.

2. Dispatch, only on PostgreSQL with CELERY_BROKER_URL set (a worker in another process must
   see the data and the queue): a real `celery worker --pool=solo` and a real SMTP server on
   loopback (tests/smtp.py, in this process). A deletion request for a student whose data went
   to `--companies` (38) companies: the time from filing until every company's email reached
   the SMTP server. Then `--requests` (1,000) deletion requests, one recipient each, filed
   one after another as fast as the portal takes them: requests dispatched per second, until
   the last company email arrived. Bench students, companies, grants and provisions are made
   once through the services (reused by later runs: bench-*@bench.example.jp); the requests
   are cancelled at the end so later runs can file again. Every wait has a deadline.
"""

import argparse
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
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

import benchlib  # noqa: E402
from benchlib import (  # noqa: E402
    REFERENCE,
    Sink,
    file_deletion,
    in_process_tasks,
    start_worker,
    stop,
    tail,
)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from consent.models import (  # noqa: E402
    Consent,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
    Screen,
)
from consent.services import consent_grant, policy_accept, provision_record  # noqa: E402
from disclosure.models import DataRequest  # noqa: E402
from disclosure.reports import disclosure_report_files, disclosure_report_html  # noqa: E402
from disclosure.services import request_cancel  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.models import ActivityRecord, Employer, PrivacyContact, User  # noqa: E402
from portal.shared.pdf import STATIC_SCHEME, pdf_url_fetcher  # noqa: E402

BENCH_DOMAIN = "bench.example.jp"
DISPATCH_STUDENT = f"bench-dispatch@{BENCH_DOMAIN}"
MANY_STUDENT = "bench-request-{:05d}@" + BENCH_DOMAIN
COMPANY_EMAIL = "privacy-{:03d}@" + BENCH_DOMAIN
CANCEL_REASON = "benchmark run finished (scripts/bench_requests.py)"


class Rollback(Exception):
    pass


def median_ms(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


# --- 1. the disclosure PDF --------------------------------------------------------------------


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


def time_report(student: User, repeat: int) -> dict:
    from weasyprint import HTML

    pdf_request = bench_request(student, DataRequest.Format.PDF)
    json_request = bench_request(student, DataRequest.Format.JSON)
    # warm-up; the CSV of the activity records comes with the PDF
    [(_kind, _name, _type, pdf), _csv] = disclosure_report_files(request_id=pdf_request.pk)
    html = disclosure_report_html(request_id=pdf_request.pk)
    HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=pdf_url_fetcher()).write_pdf()
    ours, static, json_times = [], [], []
    for _ in range(repeat):  # interleaved, so both see the same machine
        started = time.perf_counter()
        disclosure_report_files(request_id=pdf_request.pk)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=pdf_url_fetcher()).write_pdf()
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


# --- 2. dispatch ------------------------------------------------------------------------------


def bench_companies(count: int) -> list[Employer]:
    companies = []
    for n in range(1, count + 1):
        email = COMPANY_EMAIL.format(n)
        employer = (
            Employer.objects.filter(contacts__email=email, contacts__is_primary=True)
            .order_by("pk")
            .first()
        )
        if employer is None:
            employer = Employer.objects.create(
                name=f"ベンチ株式会社{n:03d}", name_en=f"Bench Corporation {n:03d}"
            )
            PrivacyContact.objects.create(
                employer=employer, name="個人情報担当", email=email, is_primary=True
            )
        companies.append(employer)
    return companies


def ensure_recipients(
    student: User, employers: list[Employer], version: PolicyVersion, purpose: Purpose
) -> None:
    """The student accepted `version`, holds a live grant for every employer and the employer
    received their data (a provision). A deletion withdraws the grants; granting them again
    makes every run file the same request (withdrawals, receipt email, company emails)."""
    if not PolicyAcceptance.objects.filter(student=student, version=version).exists():
        policy_accept(
            student=student,
            version=version,
            screen=Screen.SIGNUP,
            language=student.language,
            shown_sha256=version.stored_sha256(student.language),
        )
    granted = set(
        Consent.objects.filter(
            student=student, employer__in=employers, purpose=purpose, granted=True
        ).values_list("employer_id", flat=True)
    )
    provided = set(
        Provision.objects.filter(student=student, employer__in=employers).values_list(
            "employer_id", flat=True
        )
    )
    for employer in employers:
        if employer.pk not in granted:
            consent_grant(student=student, employer=employer, purpose=purpose)
        if employer.pk not in provided:
            provision_record(
                student=student,
                employer=employer,
                purpose=purpose,
                data_items="行動履歴の分析結果（関心度スコア）",
            )


def bench_student(email: str) -> User:
    user = User.objects.filter(email=email).first()
    return user or User.objects.create_user(email=email, display_name="ベンチ 学生", language="ja")


def cancel_open(emails_like: str = "@" + BENCH_DOMAIN) -> int:
    cancelled = 0
    for request in DataRequest.objects.filter(
        student__email__endswith=emails_like, status__in=DataRequest.OPEN
    ).select_related("student"):
        request_cancel(request=request, reason=CANCEL_REASON)
        cancelled += 1
    return cancelled


def wait_for_company_emails(
    sink: Sink, references: set[str], addresses: set[str], expected: int, timeout: float
) -> tuple[list[float], bool]:
    """Arrival times of the emails to the bench companies about `references` (found by the
    reference in the subject), until `expected` arrived or the timeout."""
    deadline = time.monotonic() + timeout
    seen, times = 0, []
    while True:
        arrivals = sink.snapshot()
        for at, to, subject in arrivals[seen:]:
            found = REFERENCE.search(subject)
            if to in addresses and found and found.group() in references:
                times.append(at)
        seen = len(arrivals)
        if len(times) >= expected:
            return sorted(times), True
        if time.monotonic() > deadline:
            return sorted(times), False
        time.sleep(0.1)


def dispatch_timings(
    dispatch_student: User,
    many: list[User],
    addresses: set[str],
    workers: int,
    timeout: float,
    many_timeout: float,
) -> dict:
    """Start the workers, file, wait for the company emails; stop the workers."""
    app.control.purge()  # nothing left on the queue by earlier runs reaches this worker
    logs = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    results = {}
    with Sink() as sink:
        running: list[subprocess.Popen] = []
        try:
            for n in range(workers):
                running.append(start_worker(sink, logs / f"worker-{n}.log"))
            # (a) one request, `companies` recipients
            started = time.perf_counter()
            request = file_deletion(dispatch_student)
            filed = time.perf_counter()
            tasks = request.tasks.count()
            times, complete = wait_for_company_emails(
                sink, {request.reference}, addresses, tasks, timeout
            )
            results["one"] = (tasks, filed - started, times, started, complete)

            # (b) `requests` requests, one recipient each, filed one after another
            if many:
                references = set()
                started = time.perf_counter()
                for student in many:
                    references.add(file_deletion(student).reference)
                filed = time.perf_counter()
                times, complete = wait_for_company_emails(
                    sink, references, addresses, len(references), many_timeout
                )
                results["many"] = (len(references), filed - started, times, started, complete)
        except Exception:
            for log in sorted(logs.glob("*.log")):
                print(f"{log.name} (tail):\n{tail(log)}")
            raise
        finally:
            for worker in running:
                stop(worker)
    return results


def bench_dispatch(
    companies: int, requests: int, timeout: float, many_timeout: float, workers: int
) -> None:
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        print(
            "dispatch: skipped; it needs PostgreSQL (DATABASE_URL=postgres://...) and a broker "
            "(CELERY_BROKER_URL=redis://...), so that a worker in another process sees the "
            f"data and the queue (database: {connection.vendor}, broker: "
            f"{'set' if settings.CELERY_BROKER_URL else 'none'})"
        )
        return
    purpose = Purpose.objects.filter(code="provision_to_employer").first()
    version = PolicyVersion.objects.current()
    if purpose is None or version is None or not version.purposes.filter(pk=purpose.pk).exists():
        print("dispatch: skipped; the current policy version must list provision_to_employer")
        return

    print(f"dispatch: preparing {companies} companies and {requests:,} + 1 bench students…")
    started = time.monotonic()
    with in_process_tasks():
        cancel_open()
        employers = bench_companies(max(companies, 1))
        dispatch_student = bench_student(DISPATCH_STUDENT)
        ensure_recipients(dispatch_student, employers[:companies], version, purpose)
        many = []
        for n in range(requests):
            student = bench_student(MANY_STUDENT.format(n + 1))
            ensure_recipients(student, [employers[n % len(employers)]], version, purpose)
            many.append(student)
            if (n + 1) % 100 == 0:
                print(f"\r  students ready: {n + 1:,}/{requests:,}", end="", flush=True)
    if requests:
        print()
    print(f"  ready in {time.monotonic() - started:.0f} s")
    addresses = {e.primary_contact.email for e in employers}
    connection.close()  # a fresh connection for the timed part

    try:
        results = dispatch_timings(
            dispatch_student, many, addresses, workers, timeout, many_timeout
        )
    finally:
        with in_process_tasks():
            cancelled = cancel_open()

    print(
        f"dispatch: PostgreSQL, Redis, {workers} worker process{'es' if workers > 1 else ''} "
        "(celery --pool=solo), SMTP server on loopback; each request also withdraws the "
        "student's grants and emails the student (receipt, request received), by the same "
        "worker"
    )
    if "one" in results:
        tasks, filing, times, started, complete = results["one"]
        if complete:
            print(
                f"  1 deletion request to {tasks} companies: filed in {filing * 1000:.0f} ms; "
                f"first company email after {(times[0] - started) * 1000:.0f} ms, "
                f"all {tasks} after {(times[-1] - started) * 1000:.0f} ms"
            )
        else:
            print(
                f"  1 deletion request to {tasks} companies: only {len(times)} of {tasks} "
                f"emails within {timeout:.0f} s"
            )
    if "many" in results:
        count, filing, times, started, complete = results["many"]
        if complete and times:
            total = times[-1] - started
            print(
                f"  {count:,} deletion requests, 1 company each: filed in {filing:.1f} s "
                f"({count / filing:,.0f}/s); last company email after {total:.1f} s: "
                f"{count / total:,.0f} requests dispatched per second"
            )
        else:
            print(
                f"  {count:,} requests: only {len(times):,} company emails within "
                f"{many_timeout:.0f} s"
            )
    if collisions := benchlib.REFERENCE_COLLISIONS:
        print(
            f"  WARNING: {collisions} request reference(s) collided with an earlier "
            "one (unique constraint) and the request was filed again"
        )
    print(f"  cancelled the {cancelled:,} bench requests so that the next run can file again")


def main() -> None:
    # aiosmtpd logs every SMTP command at INFO, the setup's in-process tasks log each run,
    # and the settings' root logger shows INFO.
    for name in ("mail.log", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each PDF timing")
    parser.add_argument("--large-records", type=int, default=2000, help="0 to skip")
    parser.add_argument("--companies", type=int, default=38)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120, help="seconds, one request")
    parser.add_argument("--many-timeout", type=float, default=600, help="seconds, many")
    parser.add_argument("--workers", type=int, default=1, help="celery --pool=solo processes")
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--skip-dispatch", action="store_true")
    args = parser.parse_args()
    if args.companies < 1 or args.requests < 0 or args.repeat < 1 or args.workers < 1:
        raise SystemExit(
            "--companies, --repeat and --workers must be at least 1, --requests at least 0"
        )

    call_command("migrate", verbosity=0)
    if not User.objects.filter(email__startswith="student0").exists():
        with in_process_tasks():
            call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    users = User.objects.count()
    print(f"database: {connection.vendor}; {users:,} users")
    if not args.skip_pdf:
        bench_report(args.repeat, args.large_records)
    if not args.skip_dispatch:
        bench_dispatch(args.companies, args.requests, args.timeout, args.many_timeout, args.workers)


if __name__ == "__main__":
    main()
