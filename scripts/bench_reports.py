"""The disclosure report of a student with many activity records (issue 20): part of `make bench`.

    DATABASE_URL=postgres://... .venv/bin/python scripts/bench_reports.py [--records 10000,100000]

For each size, a bench student with exactly that many activity records over the last year
(made once by bulk_create and kept, so later runs only measure: bench-heavy-<n>@bench.example.jp),
then, in a fresh subprocess per size, so that its peak memory is its own, outside a
transaction as the worker builds a report (a disclosure request row, deleted at the end):

- the report as filing makes it (`disclosure_report_files`: PDF, JSON and CSV from one pass
  over the records), its time against the goal, the PDF's pages and each file's bytes;
- each file on its own: the JSON and the CSV (a pass writing only that file), the PDF
  (template and WeasyPrint, given the pass's summary and latest rows);
- the yardsticks, in the same process: the raw SQL query selecting the same rows (a bare
  cursor, the ORM's own SQL) beside the JSON and the CSV, and plain WeasyPrint rendering a
  minimal HTML page of the same size as our PDF (as many table rows, one stylesheet line)
  beside our PDF;
- peak memory: the process's maximum resident set (ru_maxrss) over what it was before the
  build, and tracemalloc's peak during a second build, beside the files' own bytes (the
  files are kept in the database, so each is held once in memory to be stored).

Each figure is printed with its goal and ok/FAIL, with the machine's load before and after.
"""

import argparse
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
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

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from disclosure.models import DataRequest  # noqa: E402
from portal.models import ActivityRecord, Employer, User  # noqa: E402

BENCH_EMAIL = "bench-heavy-{:d}@bench.example.jp"
GOAL_SECONDS = {10_000: 10, 100_000: 30}  # the goals; other sizes: 30 s
GOAL_PAGES = 30  # a PDF someone reads: a summary and the latest records, whatever the count
# Memory: the larger size may hold at most this much more working memory (beyond the files'
# own bytes) than the smaller, for ten times the records.
GOAL_MEMORY_RATIO = 1.5
KINDS = [  # roughly how a student's activity is made of
    *[ActivityRecord.Kind.PAGE_VIEW] * 5,
    *[ActivityRecord.Kind.JOB_VIEW] * 6,
    *[ActivityRecord.Kind.SEARCH] * 3,
    ActivityRecord.Kind.BOOKMARK,
    ActivityRecord.Kind.APPLICATION,
    ActivityRecord.Kind.SEMINAR,
]


def load_line() -> str:
    with open("/proc/loadavg") as loadavg:
        return f"load average {' '.join(loadavg.read().split()[:3])}, {os.cpu_count()} CPUs"


# --- the bench students ------------------------------------------------------------------------


def bench_employers() -> list[Employer]:
    employers = list(Employer.objects.order_by("pk")[:12])
    for n in range(len(employers), 12):
        employers.append(
            Employer.objects.create(
                name=f"ベンチ閲覧企業{n + 1:02d}株式会社", name_en=f"Bench Viewer {n + 1:02d}"
            )
        )
    return employers


def heavy_student(records: int) -> User:
    """The bench student with exactly `records` activity records, made once."""
    email = BENCH_EMAIL.format(records)
    student = User.objects.filter(email=email).first()
    if student is None:
        student = User.objects.create_user(email=email, display_name="ベンチ 大量", language="ja")
    if ActivityRecord.objects.filter(student=student).count() == records:
        return student
    started = time.perf_counter()
    employers = bench_employers()
    now = timezone.now()
    step = timedelta(days=365) / records
    with transaction.atomic():
        ActivityRecord.objects.filter(student=student).delete()
        batch = 5000
        for first in range(0, records, batch):
            ActivityRecord.objects.bulk_create(
                ActivityRecord(
                    student=student,
                    employer=None if n % 4 == 0 else employers[n // 4 % len(employers)],
                    kind=KINDS[n % len(KINDS)],
                    detail=f"求人閲覧: 2027年卒 総合職（東京） ベンチ記録 {n:06d}",
                    occurred_at=now - step * (records - n),
                )
                for n in range(first, min(first + batch, records))
            )
    print(
        f"  made {records:,} activity records for {email} in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return student


# --- one size, in a subprocess ---------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def plain_weasyprint(rows: int, characters: int) -> tuple[float, int]:
    """WeasyPrint on a minimal page: one table of `rows` rows of about `characters` of text
    each (as many as our PDF's rows hold on average), the same font and fixed table layout,
    no template, no running headers. (seconds, pages)"""
    from weasyprint import HTML

    cell = ("求人閲覧 2027年卒 総合職 ベンチ記録 " * 8)[: max((characters - 16) // 3, 1)]
    body = "".join(
        f"<tr><td>2026/03/01 10:{n % 60:02d}</td><td>{cell}</td><td>{cell}</td><td>{cell}</td></tr>"
        for n in range(rows)
    )
    html = (
        "<html><head><style>@page { size: A4; margin: 20mm }"
        " html { font-family: 'IPAexGothic', sans-serif; font-size: 8.5pt }"
        " table { width: 100%; border-collapse: collapse; table-layout: fixed }"
        " td { border: 0.5pt solid #999; padding: 1mm }</style></head>"
        f"<body><table>{body}</table></body></html>"
    )
    document, seconds = timed(lambda: HTML(string=html).render())
    started = time.perf_counter()
    document.write_pdf()
    return seconds + time.perf_counter() - started, len(document.pages)


def raw_rows(student: User) -> tuple[int, float]:
    """The records' query as the ORM writes it, run on a bare cursor, every row fetched."""
    from disclosure.reports.activity import _FIELDS

    query = (
        ActivityRecord.objects.filter(student=student)
        .order_by("occurred_at", "id")
        .values_list(*_FIELDS)
        .query
    )
    sql, params = query.sql_with_params()
    started = time.perf_counter()
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(2000):
            count += len(chunk)
    return count, time.perf_counter() - started


def measure(records: int, repeat: int, keep: Path | None) -> dict:
    """Everything about one size, each timing the median of `repeat` rounds (interleaved,
    so that each sees the same machine): run in a fresh process (`--child`)."""
    from pypdf import PdfReader
    from weasyprint import HTML

    from disclosure.models import RequestFile
    from disclosure.reports import disclosure_report_files, disclosure_report_html
    from disclosure.reports.activity import activity_chunks
    from disclosure.reports.data import _gather
    from disclosure.reports.files import _CsvFile, _full_files, _JsonFile, report_file_kinds
    from disclosure.reports.pdf import _report_pdf

    Kind = RequestFile.Kind
    student = User.objects.get(email=BENCH_EMAIL.format(records))
    HTML(string="<p>warm-up 準備</p>").write_pdf()  # fonts and WeasyPrint loaded
    # Outside a transaction, as the worker builds a report (on PostgreSQL the records' cursor
    # is then a WITH HOLD one); the request row is deleted at the end.
    DataRequest.objects.filter(reference=f"R-BENCH-{records}").delete()
    now = timezone.now()
    request = DataRequest.objects.create(
        reference=f"R-BENCH-{records}",
        student=student,
        kind=DataRequest.Kind.DISCLOSURE,
        delivery_format=DataRequest.Format.PDF_JSON,
        language="ja",
        submitted_at=now,
        due_at=now + timedelta(days=14),
        status=DataRequest.Status.IN_PROGRESS,
    )
    full = _full_files(request, report_file_kinds(request.delivery_format))

    def only(kind: str) -> bytes:
        """The JSON or the CSV alone: the gathering and a pass writing only that file."""
        report = _gather(student, request=request)
        writer = _JsonFile(report) if kind == Kind.REPORT_JSON else _CsvFile("ja")
        for chunk in activity_chunks(student):
            report.activity.add(chunk)
            writer.add(chunk)
        report.close()
        return writer.close(report) if kind == Kind.REPORT_JSON else writer.close()

    report = _gather(student, request=request)
    for chunk in activity_chunks(student):
        report.activity.add(chunk)
    report.close()
    html = disclosure_report_html(request_id=request.pk)
    rows = html.count("<tr")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html.partition("<body")[2]))
    timings: dict[str, list[float]] = {}
    result: dict = {"records": records, "html_rows": rows}
    try:
        result["rss_before_mb"] = peak_rss_mb()
        for _ in range(repeat):
            files, seconds = timed(disclosure_report_files, request_id=request.pk)
            timings.setdefault("total_s", []).append(seconds)
            result.setdefault("rss_peak_mb", peak_rss_mb())  # the first build's
            contents = {kind: content for kind, _name, _type, content in files}
            result["bytes"] = {kind: len(content) for kind, content in contents.items()}
            result["pages"] = len(PdfReader(io.BytesIO(contents[Kind.REPORT_PDF])).pages)
            if keep:
                keep.mkdir(parents=True, exist_ok=True)
                for _kind, name, _type, content in files:
                    name = name.replace(request.reference, f"heavy-{records}")
                    (keep / name).write_bytes(content)
            del files, contents
            for key, kind in (("json_s", Kind.REPORT_JSON), ("csv_s", Kind.REPORT_CSV)):
                _content, seconds = timed(only, kind)
                timings.setdefault(key, []).append(seconds)
                del _content
            _pdf, seconds = timed(_report_pdf, report, request=request, full_files=full)
            timings.setdefault("pdf_s", []).append(seconds)
            seconds, result["plain_pages"] = plain_weasyprint(rows, len(text) // rows)
            timings.setdefault("plain_s", []).append(seconds)
            result["raw_rows"], seconds = raw_rows(student)
            timings.setdefault("raw_s", []).append(seconds)
        result |= {key: statistics.median(values) for key, values in timings.items()}

        tracemalloc.start()
        files = disclosure_report_files(request_id=request.pk)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["traced_peak_mb"] = peak / 2**20
        del files
    finally:
        request.delete()
    return result


# --- the report --------------------------------------------------------------------------------


def run_child(records: int, repeat: int, keep: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", str(records), "--repeat", str(repeat)]
    if keep:
        command += ["--keep", str(keep)]
    done = subprocess.run(  # noqa: S603 - this script, in our own interpreter
        command, cwd=BASE_DIR, capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        raise SystemExit(f"the {records:,}-record run failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Report:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def line(self, name: str, figures: str, goal: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        print(f"{name:<50} {figures:<44} {goal:<16} {verdict}", flush=True)


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each timing (median)")
    parser.add_argument("--keep", type=Path, help="write each size's files to this folder")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.repeat, args.keep)))
        return

    sizes = sorted({int(n) for n in args.records.split(",") if n.strip()})
    call_command("migrate", verbosity=0)
    print(f"disclosure report of a heavy student; database: {connection.vendor}; {load_line()}")
    for records in sizes:
        heavy_student(records)
    connection.close()

    report = Report()
    results = []
    for records in sizes:
        r = run_child(records, args.repeat, args.keep)
        results.append(r)
        goal = GOAL_SECONDS.get(records, 30)
        sizes_text = ", ".join(
            f"{kind.removeprefix('report_')} {mb(size)}" for kind, size in r["bytes"].items()
        )
        report.line(
            f"report files, {records:,} records (PDF+JSON+CSV)",
            f"{r['total_s']:6.1f} s  {sizes_text}",
            f"goal < {goal} s",
            r["total_s"] < goal,
        )
        report.line(
            "  PDF: template + WeasyPrint (summary, latest)",
            f"{r['pdf_s'] * 1000:6.0f} ms  {r['pages']} pages, {r['html_rows']} rows",
            f"goal <= {GOAL_PAGES} pages",
            r["pages"] <= GOAL_PAGES,
        )
        report.line(
            "    plain WeasyPrint, minimal page, same rows",
            f"{r['plain_s'] * 1000:6.0f} ms  {r['plain_pages']} pages; "
            f"ours {r['pdf_s'] / r['plain_s']:.2f}x",
        )
        report.line(
            "  JSON alone (gathering, one pass, writing)",
            f"{r['json_s'] * 1000:6.0f} ms  {r['records'] / r['json_s']:,.0f} records/s",
        )
        report.line(
            "  CSV alone (gathering, one pass, writing)",
            f"{r['csv_s'] * 1000:6.0f} ms  {r['records'] / r['csv_s']:,.0f} records/s",
        )
        report.line(
            "    raw SQL, the same rows, bare cursor",
            f"{r['raw_s'] * 1000:6.0f} ms  {r['raw_rows']:,} rows; JSON "
            f"{r['json_s'] / r['raw_s']:.1f}x, CSV {r['csv_s'] / r['raw_s']:.1f}x",
        )
        files_mb = sum(r["bytes"].values()) / 2**20
        r["working_mb"] = r["traced_peak_mb"] - files_mb
        report.line(
            "  memory: peak RSS (growth while building)",
            f"{r['rss_peak_mb']:6.0f} MB  (+{r['rss_peak_mb'] - r['rss_before_mb']:.0f} MB)",
        )
        report.line(
            "  memory: traced peak (beyond the files' bytes)",
            f"{r['traced_peak_mb']:6.1f} MB  ({r['working_mb']:.1f} MB beyond {files_mb:.1f} MB)",
        )
    if len(results) > 1:
        small, large = results[0], results[-1]
        ratio = large["working_mb"] / max(small["working_mb"], 0.1)
        report.line(
            f"memory beyond the files, {large['records']:,} / {small['records']:,}",
            f"{ratio:6.2f}x for {large['records'] / small['records']:.0f}x the records",
            f"goal < {GOAL_MEMORY_RATIO}x",
            ratio < GOAL_MEMORY_RATIO,
        )
    print(f"after: {load_line()}; {len(report.failed)} goal(s) not met")


if __name__ == "__main__":
    main()
