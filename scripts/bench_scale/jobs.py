"""The disclosure report of the heavy student, and the retention job over the expired rows."""

import time
from datetime import timedelta

from benchlib import Report
from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench_scale.common import HEAVY_EMAIL
from disclosure.models import DataRequest
from portal.models import ActivityRecord


def disclosure_report(report: Report) -> None:
    from disclosure.reports import disclosure_report_data, disclosure_report_files

    request = DataRequest.objects.get(reference="R-BENCH-HEAVY")
    records = ActivityRecord.objects.filter(student=request.student).count()
    reset_queries()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        data = disclosure_report_data(request.student, request=request)
    gathered = time.perf_counter() - started
    report.capture("disclosure report data", captured.captured_queries)
    report.line(
        f"disclosure report data ({records:,} activity records)",
        f"{gathered * 1000:>6.0f} ms  {len(captured.captured_queries):>3} q",
        "goal < 2,000 ms",
        gathered < 2,
    )
    del data
    started = time.perf_counter()
    files = disclosure_report_files(request_id=request.pk)
    elapsed = time.perf_counter() - started
    sizes = ", ".join(
        f"{name.rsplit('.', 1)[-1]} {len(content) / 1e6:.1f} MB" for _k, name, _t, content in files
    )
    report.line(
        "disclosure report files (PDF + JSON + CSV)",
        f"{elapsed:>6.1f} s  ({sizes})",
        "goal < 10 s",
        elapsed < 10,
    )
    report.explain_slow()
    heavy_deletion(report, request.student)


def heavy_deletion(report: Report, student) -> None:
    """The heavy student files a deletion, rolled back (the filing's whole transaction: the
    withdrawals, the erasure, the company tasks, the emails), beside the raw DELETE of the
    same activity records, rolled back too. Each three times, interleaved."""
    from disclosure.services import request_file

    records = ActivityRecord.objects.filter(student=student).count()
    table = ActivityRecord._meta.db_table
    filing, raw, queries = [], [], 0
    for _ in range(3):
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            request_file(student=student, kind=DataRequest.Kind.DELETION)
            filing.append(time.perf_counter() - started)
            transaction.set_rollback(True)
        queries = len(captured.captured_queries)
        with transaction.atomic(), connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(f"DELETE FROM {table} WHERE student_id = %s", [student.pk])  # noqa: S608
            raw.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    best, floor = min(filing) * 1000, min(raw) * 1000
    report.line(
        f"deletion filed, {records:,} activity records",
        f"{best:>6.0f} ms  {queries:>3} q  raw DELETE {floor:.0f} ms ({best / floor:.1f}x)",
        "goal < 500 ms",
        best < 500,
    )


def retention(report: Report) -> None:
    from backoffice.retention import retention_run

    cutoff = timezone.now() - timedelta(days=settings.RETENTION_ACTIVITY_DAYS)
    expired = ActivityRecord.objects.filter(occurred_at__lt=cutoff).count()
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        counts = retention_run()
        elapsed = time.perf_counter() - started
    deleted = sum(counts.values())
    rate = deleted / elapsed
    report.line(
        f"retention job ({expired:,} expired activity records)",
        f"{elapsed:>6.1f} s  {rate:>9,.0f} rows/s",
        "goal > 50,000/s",
        rate > 50_000,
    )
    print(f"{'':<46} deleted {counts}; {len(captured.captured_queries):,} queries")
    left = ActivityRecord.objects.filter(occurred_at__lt=cutoff).count()
    kept = ActivityRecord.objects.filter(student__email=HEAVY_EMAIL).count()
    report.line(
        "retention left no expired row, kept the rest", f"{left} left, {kept:,} kept", "", left == 0
    )
