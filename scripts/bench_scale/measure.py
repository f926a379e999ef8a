"""Timing a page through the whole Django stack, and the API, the disclosure report and the
retention job."""

import json
import random
import re
import time
import tracemalloc
from datetime import timedelta

from django.conf import settings
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent.models import Consent, ConsentEvent, Purpose
from disclosure.models import DataRequest
from portal.models import ActivityRecord, Employer, User
from scripts.bench_scale.common import HEAVY_EMAIL, SEED
from scripts.bench_scale.report import Report

_DECLARE = re.compile(r'DECLARE "[^"]+" NO SCROLL CURSOR WITH(?:OUT)? HOLD FOR (.*)', re.S)


def _replayable(queries: list[dict]) -> list[str]:
    """The page's reads as sent (psycopg binds the values into the text): every SELECT, and
    the SELECT of a streamed response's server-side cursor."""
    statements = []
    for query in queries:
        statement = query["sql"]
        if declared := _DECLARE.match(statement):
            statement = declared.group(1)
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)
    return statements


def _replay(statements: list[str]) -> float:
    """Seconds to send `statements` raw through the same connection and read every row: the
    page's database time, without Django, the template or the middleware."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            cursor.fetchall()
    return time.perf_counter() - started


def _body(response) -> bytes:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


def streamed_peak(client: Client, url: str) -> tuple[int, int, int]:
    """(lines, bytes, peak bytes held by Python) of a streamed download, read chunk by chunk
    and let go, as a WSGI server does: the peak stays flat when the rows are streamed."""
    tracemalloc.start()
    try:
        response = client.get(url)
        lines = size = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
            size += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return lines, size, peak


def _page(report: Report, client: Client, name: str, url: str, *, repeat: int, goal_ms=500):
    """One warm-up request with its queries captured, then `repeat` timed ones, each followed
    by the page's own SELECTs sent raw (the baseline printed as "sql")."""
    reset_queries()  # the log holds 9,000 queries at most: a full one captures nothing
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        _body(response)
    if response.status_code != 200:
        report.line(name, f"{url} answered {response.status_code}", "", False)
        return b""
    report.capture(name, captured.captured_queries)
    # Read now: leaving CaptureQueriesContext connects reset_queries to request_started again,
    # so the next request empties the log its slice points into (every page printed "0 q").
    queries = len(captured.captured_queries)
    statements = _replayable(captured.captured_queries)
    timings, raw = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        body = _body(client.get(url))
        timings.append(time.perf_counter() - started)
        raw.append(_replay(statements))
    reset_queries()
    report.timing(name, timings, goal_ms, f"{queries:>3} q", baseline=raw)
    return body


def changes_feed(report: Report, repeat: int) -> None:
    from consent.api.keys import api_key_create
    from consent.models import ApiClient

    ApiClient.objects.filter(name__startswith="bench-scale", provisions=None).delete()
    _pipeline, pipeline_key = api_key_create(name="bench-scale pipeline")
    employer = Employer.objects.order_by("pk").first()
    _client, employer_key = api_key_create(name="bench-scale employer", employer=employer)
    client = Client()
    newest = ConsentEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    for name, key, since in (
        ("changes feed, pipeline, from the start", pipeline_key, 0),
        ("changes feed, pipeline, near the end", pipeline_key, max(0, newest - 5000)),
        ("changes feed, employer key, from start", employer_key, 0),
        ("changes feed, employer key, near end", employer_key, max(0, newest - 50_000)),
    ):
        address = reverse("api:consent_changes") + f"?since={since}&limit=1000"
        headers = {"Authorization": f"Bearer {key}"}
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(address, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{address} answered {response.status_code}: {response.content[:200]}")
        report.capture(name, captured.captured_queries)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(address, headers=headers)
            timings.append(time.perf_counter() - started)
        rows = len(response.json()["changes"])
        report.timing(name, timings, 200, f"{rows:>4} rows")
        report.explain_slow()


def consent_check(report: Report, requests: int) -> None:
    """As scripts/bench_api.py: 1,000 triples (half allowed) against the bare view, one
    gunicorn worker, interleaved over two keep-alive connections."""
    import http.client

    from consent.api.keys import api_key_create
    from scripts import bench_api

    rng = random.Random(SEED)  # noqa: S311 - a repeatable sample
    purpose = Purpose.objects.get(code="behaviour_analysis")
    granted = list(
        Consent.objects.filter(purpose=purpose, granted=True, student__email__startswith="bulk-")
        .order_by("pk")
        .values_list("student__public_id", "employer_id")[:200_000]
    )
    granted_set = set(granted)
    publics = list(
        User.objects.filter(email__startswith="bulk-").values_list("public_id", flat=True)
    )
    employers = list(Employer.objects.values_list("pk", flat=True))
    payloads = []
    for _ in range(8):
        triples = rng.sample(granted, 500)
        while len(triples) < 1000:
            candidate = (rng.choice(publics), rng.choice(employers))
            if candidate not in granted_set:
                triples.append(candidate)
        rng.shuffle(triples)
        checks = [{"student": str(s), "employer": e, "purpose": purpose.code} for s, e in triples]
        payloads.append(json.dumps({"checks": checks}).encode())
    _client, key = api_key_create(name="bench-scale check")
    connection.close()
    port = bench_api.free_port()
    server = bench_api.start_server(port)
    try:
        check = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        bare = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        plain = {"Content-Type": "application/json"}
        _elapsed, first = bench_api.timed_post(
            check, "/api/v1/consents/check", payloads[0], headers
        )
        allowed = sum(r["allowed"] for r in json.loads(first)["results"])
        if allowed != 500:
            raise SystemExit(f"expected 500 allowed in a batch, got {allowed}")
        check_times, bare_times = [], []
        for n in range(10 + requests):
            body = payloads[n % len(payloads)]
            check_time, _ = bench_api.timed_post(check, "/api/v1/consents/check", body, headers)
            bare_time, _ = bench_api.timed_post(bare, "/api/v1/_bench/bare", body, plain)
            if n >= 10:
                check_times.append(check_time)
                bare_times.append(bare_time)
    finally:
        server.terminate()
        server.wait(timeout=10)
    endpoint, yardstick = bench_api.summary(check_times), bench_api.summary(bare_times)
    ratio = endpoint[2] / yardstick[2]
    report.timing(
        "consent check, 1,000 triples (gunicorn)", check_times, 50, f"{endpoint[2]:>7,.0f}/s"
    )
    report.timing("bare JSON view, same payload", bare_times, None, f"{yardstick[2]:>7,.0f}/s")
    report.line("consent check / bare view, checks/s", f"{ratio:.2f}", "goal >= 0.50", ratio >= 0.5)


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
    report.line("disclosure report files (PDF + JSON)", f"{elapsed:>6.1f} s  ({sizes})", "", None)
    report.explain_slow()


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
    print(f"{'':<52} deleted {counts}; {len(captured.captured_queries):,} queries")
    left = ActivityRecord.objects.filter(occurred_at__lt=cutoff).count()
    kept = ActivityRecord.objects.filter(student__email=HEAVY_EMAIL).count()
    report.line(
        "retention left no expired row, kept the rest", f"{left} left, {kept:,} kept", "", left == 0
    )
