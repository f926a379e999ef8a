"""Timing an admin page through the whole Django stack, beside its own SELECTs sent raw in
the same run (the `sql` baseline), and the memory a streamed download holds."""

import re
import statistics
import time
import tracemalloc

from benchlib import Report
from django.contrib import admin
from django.db import connection, reset_queries
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from portal.shared.keyset import AFTER, BEFORE, LAST, keyset_order, position_token

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


def page_timing(
    report: Report, client: Client, name: str, url: str, *, repeat: int, goal_ms=500
) -> bytes:
    """Two warm-up requests, the second with its queries captured, then `repeat` timed ones,
    each followed by the page's own SELECTs sent raw (printed as `sql`, the p50 of the same
    run)."""
    # A first request fills what a page keeps between requests (the impact report's counts),
    # so the captured one shows the queries of the requests timed after it.
    _body(client.get(url))
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
    body = b""
    for _ in range(repeat):
        started = time.perf_counter()
        body = _body(client.get(url))
        timings.append(time.perf_counter() - started)
        raw.append(_replay(statements))
    reset_queries()
    sql_p50 = statistics.median(raw) * 1000
    report.timing(name, timings, goal_ms, f"{queries:>3} q  sql {sql_p50:>5.1f}")
    return body


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


def deep_links(staff, model, depth: int) -> list[tuple[str, str]]:
    """The links a list's pages carry `depth` rows into its own order: Next from there
    (`after:` the row before), Previous back (`before:` it), and the last page. The row is
    found once, with OFFSET, before anything is timed."""
    from urllib.parse import urlencode

    request = RequestFactory().get("/")
    request.user = staff
    queryset = admin.site._registry[model].get_changelist_instance(request).queryset
    order = keyset_order(queryset)
    if order is None:
        return [(f"page {depth // 100:,} (numbered: capped)", f"?p={depth // 100}")]
    row = queryset[depth - 1]
    position = position_token([getattr(row, field.attname) for field, _descending in order])
    return [
        (f"{depth:,} rows in (Next)", "?" + urlencode({"p": AFTER + position})),
        (f"{depth:,} rows in (Previous)", "?" + urlencode({"p": BEFORE + position})),
        ("last page", "?" + urlencode({"p": LAST})),
    ]
