"""The API's rows: the consent check (1,000 triples in one gunicorn, beside its own lookup sent
raw and the bare view) and the changes feed (each page beside its own query sent raw)."""

import json
import random
import time

from benchlib import Report
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench_scale.common import SEED
from bench_scale.raw import ratio_line, raw_connection, raw_timing
from consent.models import Consent, ConsentEvent, Purpose
from portal.models import Employer, User


def changes_feed(report: Report, repeat: int) -> None:
    """Each page of the feed through Django (in-process), and the query it runs sent raw."""
    from consent.api.keys import api_key_create
    from consent.models import ApiClient

    ApiClient.objects.filter(name__startswith="bench-scale", provisions=None).delete()
    _pipeline, pipeline_key = api_key_create(name="bench-scale pipeline")
    employer = Employer.objects.order_by("pk").first()
    _client, employer_key = api_key_create(name="bench-scale employer", employer=employer)
    client = Client()
    raw = raw_connection()
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
        # The page's own query, as Django sent it (its parameters written in).
        [feed_sql] = [
            q["sql"] for q in captured.captured_queries if "consent_consentevent" in q["sql"]
        ]
        timings, raw_timings = [], []
        for _ in range(max(repeat, 5)):
            started = time.perf_counter()
            client.get(address, headers=headers)
            timings.append(time.perf_counter() - started)
            raw_timings.append(raw_timing(raw, feed_sql))
        rows = len(response.json()["changes"])
        report.timing(name, timings, 200, f"{rows:>4} rows")
        ratio_line(report, "  / its query sent raw (psycopg)", timings, raw_timings, None)
        report.explain_slow()
    raw.close()


def consent_check(report: Report, requests: int) -> None:
    """1,000 triples (half allowed) in one gunicorn worker (as scripts/bench_api.py), the
    same payloads' lookup sent raw by psycopg (the service's own query and parameter, built
    before the clock starts), and the bare view, interleaved: each request of one is
    followed by one of the others, so all three see the same machine."""
    import http.client

    import bench_api

    from consent.api.keys import api_key_create
    from consent.services.provisions import CHECK_SQL, check_parameters

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
    payloads, parameters = [], []
    for _ in range(8):
        triples = rng.sample(granted, 500)
        while len(triples) < 1000:
            candidate = (rng.choice(publics), rng.choice(employers))
            if candidate not in granted_set:
                triples.append(candidate)
        rng.shuffle(triples)
        checks = [{"student": str(s), "employer": e, "purpose": purpose.code} for s, e in triples]
        payloads.append(json.dumps({"checks": checks}).encode())
        parameters.append(
            check_parameters(
                [str(s) for s, _e in triples], [e for _s, e in triples], [purpose.code] * 1000
            )
        )
    _client, key = api_key_create(name="bench-scale check")
    connection.close()
    raw = raw_connection()
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
        check_times, bare_times, raw_times = [], [], []
        for n in range(10 + requests):
            body = payloads[n % len(payloads)]
            check_time, _ = bench_api.timed_post(check, "/api/v1/consents/check", body, headers)
            raw_time = raw_timing(raw, CHECK_SQL, parameters[n % len(payloads)])
            bare_time, _ = bench_api.timed_post(bare, "/api/v1/_bench/bare", body, plain)
            if n >= 10:
                check_times.append(check_time)
                raw_times.append(raw_time)
                bare_times.append(bare_time)
    finally:
        server.terminate()
        server.wait(timeout=10)
        raw.close()
    endpoint, yardstick = bench_api.summary(check_times), bench_api.summary(bare_times)
    report.timing(
        "consent check, 1,000 triples (gunicorn)", check_times, 50, f"{endpoint[2]:>7,.0f}/s"
    )
    report.timing("raw SQL, the same lookups (psycopg)", raw_times, None)
    ratio_line(report, "consent check / raw SQL, p50", check_times, raw_times, 1.5)
    report.timing("bare JSON view, same payload", bare_times, None, f"{yardstick[2]:>7,.0f}/s")
    # Issue 3's yardstick, printed for comparison: a view that only parses and writes JSON
    # answers in less time than the check's query alone takes (issue 20 set the raw SQL).
    ratio = endpoint[2] / yardstick[2]
    report.line("consent check / bare view, checks/s", f"{ratio:.2f}", "(no goal)", None)
