"""The yardsticks: the same queries sent raw by psycopg, and each figure over its own."""

import statistics
import time

import psycopg
from benchlib import Report
from django.conf import settings


def load_average() -> str:
    """The machine's load now (1 and 5 minutes): each figure is printed with it."""
    with open("/proc/loadavg") as loadavg:
        one, five = loadavg.read().split()[:2]
    return f"load {one}/{five}"


def raw_connection() -> psycopg.Connection:
    """A plain psycopg connection to the same database, for the raw SQL yardsticks."""
    config = settings.DATABASES["default"]
    return psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname=config["NAME"],
        autocommit=True,
        options="-c jit=off",  # as the portal's own connections
    )


def raw_timing(raw: psycopg.Connection, statement: str, params=None) -> float:
    """One execution of a query and the fetch of every row, as any program would: what the
    database and the wire cost, without Django. Not prepared, as the portal's are not."""
    started = time.perf_counter()
    raw.execute(statement, params, prepare=False).fetchall()
    return time.perf_counter() - started


def ratio_line(
    report: Report, name: str, ours: list[float], raw: list[float], limit: float | None
) -> None:
    """`name`: our p50 over the raw SQL's p50 in the same run, against `limit` if any."""
    ours_p50, raw_p50 = statistics.median(ours) * 1000, statistics.median(raw) * 1000
    ratio = ours_p50 / raw_p50
    report.line(
        name,
        f"{ratio:.2f}x ({ours_p50:.1f} / {raw_p50:.1f} ms) {load_average()}",
        f"goal <= {limit}x" if limit else "(no goal)",
        None if limit is None else ratio <= limit,
    )
