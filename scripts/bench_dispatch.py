"""Passing requests on to companies, and filing them, against what the parts can do.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python scripts/bench_dispatch.py

PostgreSQL and a broker only: a worker in another process must see the data and the queue.
Everything runs on this machine: a real `celery worker` (prefork, `--concurrency` processes),
an SMTP server on loopback (tests/smtp.py, in this process) and, for filing, gunicorn.

1. **Dispatch.** `--wave` (50) deletion requests, each to `--companies` (38) companies, are
   filed while the worker is stopped; then the worker starts and the time from the first
   company email reaching the SMTP server to the last gives company tasks per second. Two
   baselines are measured in the same run, on the same machine: raw smtplib sending the same
   number of the same emails (those the dispatch made) to the same server over one
   connection, before and after everything else; and a no-op Celery task, as many queued
   while the worker is stopped, run by the same worker. Goal: dispatch at least half the raw
   SMTP rate. Every company email is counted: none lost, none twice.
2. One request to 38 companies with the worker idle: the time until every company's email
   arrived; and `--requests` (1,000) requests, one company each, filed one after another:
   requests dispatched per second.
3. **Filing over HTTP.** gunicorn (`--web-workers`, DEBUG off) serves the real form; students
   whose data went to 38 companies, signed in and recently re-authenticated, each file a
   deletion (POST /requests/new/), while the worker dispatches what they filed. One client
   one after another: p50 and p95 of the server's time (each request's own time in
   gunicorn, from its access log), and of the round trip the client saw beside it. Then
   `--clients` clients at once: filings per second, and how many company emails the worker
   delivered meanwhile. Goals: p50 under 30 ms, at least 30 filings a second. Beside the
   p50, right after and under the same dispatch, its parts: a signed-in GET /healthz over
   the same gunicorn (the web's floor, its server's time), and the SQL statements one
   filing sends, captured from one made in this process and rolled back, replayed raw (the
   database's floor).

The worker runs at `--worker-nice` (10), as its service unit in docs/operations.md does: on
shared cores the web's requests go before the worker's batch (the figures of both are
printed; `--worker-nice 0` measures them without it).

Its parts: bench_dispatch_data.py (the students, companies, grants and requests),
bench_dispatch_processes.py (the SMTP sink, the worker, gunicorn) and bench_dispatch_http.py
(filing over HTTP).

The machine's load average is printed with each figure: other jobs share the two cores, so
only ratios to a baseline measured in the same run compare across runs.

The bench's students, companies, grants and provisions are made once (bench-*@bench.example.jp)
and reused; each run grants again what the last run's deletions withdrew, by bulk-loading the
rows `consent_grant` would make (as bench_scale.py loads its data). The requests are cancelled
at the end, so the next run can file again. Every wait has a deadline.
"""

import argparse
import io
import logging
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

# whitenoise warns about a missing STATIC_ROOT when collectstatic has not run; irrelevant here.
warnings.filterwarnings("ignore", "No directory at")
django.setup()

import benchlib  # noqa: E402
import redis  # noqa: E402
from bench_dispatch_data import (  # noqa: E402
    BENCH_DOMAIN,
    bench_companies,
    bench_students,
    cancel_open,
    ensure_recipients,
)
from bench_dispatch_http import bench_filing  # noqa: E402
from bench_dispatch_processes import (  # noqa: E402
    start_dispatch_worker,
    wait_for_company_emails,
)
from benchlib import Sink, file_deletion, in_process_tasks, stop, tail  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.mail import EmailMultiAlternatives  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from consent.models import PolicyVersion, Purpose  # noqa: E402
from disclosure.models import DataSource  # noqa: E402
from portal.celery import app  # noqa: E402
from portal.models import EmailMessage, User  # noqa: E402

ONE_STUDENT = f"bench-dispatch@{BENCH_DOMAIN}"
WAVE_STUDENT = "bench-wave-{:03d}@" + BENCH_DOMAIN
FILING_STUDENT = "bench-filing-{:04d}@" + BENCH_DOMAIN
MANY_STUDENT = "bench-request-{:05d}@" + BENCH_DOMAIN
DISPATCH_GOAL = 0.5  # of the raw SMTP rate
FILING_P50_GOAL_MS = 30
FILING_RATE_GOAL = 30  # filings per second


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


# --- 1. dispatch against its baselines ----------------------------------------------------------
def smtp_baseline(sink: Sink, messages: list[tuple[str, list[str], bytes]], count: int) -> float:
    """Raw smtplib: `count` of `messages` over one connection; messages per second."""
    with smtplib.SMTP(sink.host, sink.port, timeout=30) as client:
        client.ehlo()
        started = time.perf_counter()
        for n in range(count):
            sender, recipients, content = messages[n % len(messages)]
            client.sendmail(sender, recipients, content)
        elapsed = time.perf_counter() - started
    return count / elapsed


def raw_messages(addresses: set[str]) -> list[tuple[str, list[str], bytes]]:
    """The latest company emails of the dispatch, as SMTP hands them over."""
    rows = EmailMessage.objects.filter(to__in=addresses, kind__startswith="company_request:")
    messages = []
    for row in rows.order_by("-pk")[: len(addresses)]:
        email = EmailMultiAlternatives(
            subject=row.subject,
            body=row.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[row.to],
            cc=row.cc,
        )
        if row.body_html:
            email.attach_alternative(row.body_html, "text/html")
        messages.append(
            (email.from_email, email.recipients(), email.message().as_bytes(linesep="\r\n"))
        )
    return messages


def noop_baseline(
    sink: Sink, log: Path, count: int, concurrency: int, timeout: float, nice: int
) -> float:
    """`count` no-op tasks queued while no worker runs, then a worker started: tasks per
    second from the first task's run to the last's."""
    key = f"bench:noop:{uuid.uuid4().hex}"
    for _ in range(count):
        app.send_task("bench.noop", args=[key])
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    worker = start_dispatch_worker(sink, log, concurrency, nice)
    try:
        deadline = time.monotonic() + timeout
        while client.llen(key) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {client.llen(key)} of {count} no-op tasks ran")
            time.sleep(0.05)
    finally:
        stop(worker)
    times = sorted(float(t) for t in client.lrange(key, 0, -1))
    client.delete(key)
    return (count - 1) / (times[-1] - times[0])


# --- the run ------------------------------------------------------------------------------------
def dispatch(args) -> None:
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

    print(
        f"dispatch: preparing {args.companies} companies, {args.wave} + {args.filings} + 1 "
        f"students with {args.companies} recipients and {args.requests:,} with one…",
        flush=True,
    )
    started = time.monotonic()
    with in_process_tasks():
        cancel_open()
        employers = bench_companies(args.companies)
        one = bench_students([ONE_STUDENT])
        wave = bench_students([WAVE_STUDENT.format(n + 1) for n in range(args.wave)])
        filers = bench_students([FILING_STUDENT.format(n + 1) for n in range(args.filings)])
        many = bench_students([MANY_STUDENT.format(n + 1) for n in range(args.requests)])
        everyone = one + wave + filers
        for chunk in range(0, len(everyone), 50):
            ensure_recipients(
                [(s, e) for s in everyone[chunk : chunk + 50] for e in employers], version, purpose
            )
        for chunk in range(0, len(many), 500):
            ensure_recipients(
                [
                    (s, employers[(chunk + n) % len(employers)])
                    for n, s in enumerate(many[chunk : chunk + 500])
                ],
                version,
                purpose,
            )
    # Each run cancels, withdraws and grants again in the same database: without a VACUUM
    # its dead rows slowed the next run's dispatch by a quarter (0.47x raw SMTP, then 0.65x
    # right after a VACUUM, docs/performance.md), which measured the database's history.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  ready in {time.monotonic() - started:.0f} s (and vacuumed)", flush=True)
    # The job site's own systems take part in every request, but the demo's are not running
    # here: their calls would only fail and retry. Left out for the run.
    sources = list(DataSource.objects.filter(active=True).values_list("pk", flat=True))
    DataSource.objects.filter(pk__in=sources).update(active=False)
    addresses = {e.primary_contact.email for e in employers}
    connection.close()  # a fresh connection for the timed part
    app.control.purge()  # nothing left on the queue by earlier runs
    logs = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    run = Run(args, addresses, logs)
    try:
        with Sink() as sink:
            run.sink = sink
            print(
                f"PostgreSQL, Redis, celery worker --pool=prefork --concurrency="
                f"{args.concurrency} at nice {args.worker_nice}, SMTP server on loopback (in "
                f"this process); {os.cpu_count()} CPUs"
            )
            run.dispatch(wave)
            run.one_request(one[0])
            if many:
                run.many_requests(many)
            if args.filings > args.sequential + 2 * args.web_workers:
                run.filing(filers)
            run.smtp_again()
    except Exception:
        print(
            f"worker log (tail):\n{tail(run.worker_log)}\n"
            f"gunicorn log (tail):\n{tail(logs / 'gunicorn.log')}"
        )
        raise
    finally:
        stop(run.worker)
        app.control.purge()
        with in_process_tasks():
            cancelled = cancel_open()
        DataSource.objects.filter(pk__in=sources).update(active=True)
    if collisions := benchlib.REFERENCE_COLLISIONS:
        print(f"WARNING: {collisions} request reference(s) collided and were filed again")
    print(f"cancelled the {cancelled:,} bench requests so that the next run can file again")
    print(f"goals not met: {run.failed}")


class Run:
    """The timed part, each figure printed as soon as it is measured."""

    def __init__(self, args, addresses: set[str], logs: Path) -> None:
        self.args = args
        self.addresses = addresses
        self.logs = logs
        self.worker_log = logs / "worker.log"
        self.worker: subprocess.Popen | None = None
        self.sink: Sink | None = None
        self.failed = 0
        self.messages: list = []
        self.smtp_rates: list[float] = []

    def start_worker(self) -> None:
        self.worker = start_dispatch_worker(
            self.sink, self.worker_log, self.args.concurrency, self.args.worker_nice
        )

    def stop_worker(self) -> None:
        stop(self.worker)
        self.worker = None

    def dispatch(self, wave: list[User]) -> None:
        args, sink = self.args, self.sink
        emails = len(wave) * len(self.addresses)
        noop = noop_baseline(
            sink, self.worker_log, emails, args.concurrency, args.timeout, args.worker_nice
        )
        noop_load = load()

        start = sink.count()
        filed_at = time.perf_counter()
        references = {file_deletion(s).reference for s in wave}
        filing = time.perf_counter() - filed_at
        self.start_worker()
        load_before = os.getloadavg()[0]
        times, pairs, complete = wait_for_company_emails(
            sink, start, references, self.addresses, emails, args.timeout
        )
        load_during = os.getloadavg()[0]
        if not complete:
            raise RuntimeError(f"only {len(times)} of {emails} company emails arrived")
        rate = (len(times) - 1) / (times[-1] - times[0])
        time.sleep(2)  # anything sent twice would arrive by now
        _t, pairs, _c = wait_for_company_emails(sink, start, references, self.addresses, 0, 0)
        twice = sum(n - 1 for n in pairs.values() if n > 1)
        lost = len(references) * len(self.addresses) - len(pairs)
        self.stop_worker()

        # The baseline: the same emails, as SMTP got them, by raw smtplib.
        self.messages = raw_messages(self.addresses)
        smtp = smtp_baseline(sink, self.messages, emails)
        self.smtp_rates.append(smtp)
        ratio = rate / smtp
        self.failed += ratio < DISPATCH_GOAL or bool(lost or twice)
        print(
            f"dispatch of {len(wave)} deletion requests x {len(self.addresses)} companies "
            f"({emails:,} company emails; filed in {filing:.1f} s with the worker stopped, "
            "then the worker started), from the first company email to the last:"
        )
        print(f"  no-op Celery task, {emails:,} queued: {noop:,.0f} tasks/s ({noop_load})")
        print(
            f"  raw smtplib, one connection, the same {emails:,} emails: {smtp:,.0f} msg/s "
            f"({load()})"
        )
        print(
            f"  dispatch: {rate:,.1f} company tasks/s = {ratio:.2f}x raw SMTP, "
            f"{rate / noop:.2f}x the no-op task; goal {DISPATCH_GOAL}x raw SMTP: "
            f"{verdict(ratio >= DISPATCH_GOAL)} (load {load_before:.1f} -> {load_during:.1f})"
        )
        print(f"  {lost} company emails lost, {twice} sent twice", flush=True)

    def one_request(self, student: User) -> None:
        self.start_worker()
        start = self.sink.count()
        started = time.perf_counter()
        request = file_deletion(student)
        filed = time.perf_counter() - started
        times, _p, complete = wait_for_company_emails(
            self.sink,
            start,
            {request.reference},
            self.addresses,
            len(self.addresses),
            self.args.timeout,
        )
        if complete:
            print(
                f"1 deletion request to {len(times)} companies, the worker idle: filed in "
                f"{filed * 1000:.0f} ms; first company email after "
                f"{(times[0] - started) * 1000:.0f} ms, all after "
                f"{(times[-1] - started) * 1000:.0f} ms ({load()})",
                flush=True,
            )
        else:
            print(f"1 deletion request: only {len(times)} company emails within the timeout")

    def many_requests(self, many: list[User]) -> None:
        start = self.sink.count()
        started = time.perf_counter()
        references = {file_deletion(s).reference for s in many}
        filing = time.perf_counter() - started
        times, _p, complete = wait_for_company_emails(
            self.sink,
            start,
            references,
            self.addresses,
            len(references),
            self.args.many_timeout,
        )
        count = len(references)
        if complete and times:
            total = times[-1] - started
            print(
                f"{count:,} deletion requests, 1 company each: filed in {filing:.1f} s "
                f"({count / filing:,.0f}/s); last company email after {total:.1f} s: "
                f"{count / total:,.0f} requests dispatched per second ({load()})",
                flush=True,
            )
        else:
            print(f"{count:,} requests: only {len(times):,} emails within the timeout")

    def filing(self, filers: list[User]) -> None:
        args = self.args
        results = bench_filing(
            filers,
            self.sink,
            sequential=args.sequential,
            clients=args.clients,
            web_workers=args.web_workers,
            logs=self.logs,
        )
        print(
            f"filing a deletion to {len(self.addresses)} companies over HTTP (gunicorn "
            f"-w {args.web_workers}, DEBUG off, POST /requests/new/), the worker dispatching:"
        )
        timings, elapsed, delivered, loads = results["sequential"]
        # The goal is the server's time: each filing's own time in gunicorn (its access log).
        # The round trip the client sees is printed beside it; it adds a new connection a
        # filing and this process's client sharing the interpreter with the SMTP server.
        server = results["server"]
        p50 = statistics.median(server) * 1000
        p95 = sorted(server)[int(len(server) * 0.95)] * 1000
        trip = statistics.median(timings) * 1000
        self.failed += p50 >= FILING_P50_GOAL_MS
        print(
            f"  one client, {len(timings)} filings: the server's time (gunicorn's own) p50 "
            f"{p50:.1f} ms, p95 {p95:.1f} ms; goal p50 < {FILING_P50_GOAL_MS} ms: "
            f"{verdict(p50 < FILING_P50_GOAL_MS)} (load {loads[0]:.1f} -> {loads[1]:.1f}); the "
            f"round trip the client saw, p50 {trip:.1f} ms, p95 "
            f"{sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms; the worker sent "
            f"{delivered / elapsed:,.0f} emails/s meanwhile"
        )
        healthz = statistics.median(results["healthz_server"]) * 1000
        count, replayed = results["sql"]
        sql = statistics.median(replayed) * 1000
        print(
            f"  its parts, right after: GET /healthz signed in, over the same gunicorn, the "
            f"server's time p50 {healthz:.1f} ms (round trip "
            f"{statistics.median(results['healthz']) * 1000:.1f} ms); its {count} SQL statements "
            f"replayed raw in one transaction, p50 {sql:.1f} ms; filing = "
            f"{p50 / (healthz + sql):.1f}x the two together ({load()})"
        )
        timings, elapsed, delivered, loads = results["concurrent"]
        per_second = len(timings) / elapsed
        self.failed += per_second < FILING_RATE_GOAL
        print(
            f"  {args.clients} clients at once, {len(timings)} filings: {per_second:.1f} "
            f"filings/s (p50 {statistics.median(timings) * 1000:.0f} ms); goal "
            f"{FILING_RATE_GOAL}/s: {verdict(per_second >= FILING_RATE_GOAL)} "
            f"(load {loads[0]:.1f} -> {loads[1]:.1f}); the worker sent "
            f"{delivered / elapsed:,.0f} emails/s meanwhile",
            flush=True,
        )

    def smtp_again(self) -> None:
        """The raw SMTP baseline again, at the end, the worker stopped."""
        self.stop_worker()
        app.control.purge()
        smtp = smtp_baseline(self.sink, self.messages, len(self.messages) * 50)
        print(
            f"raw smtplib again, at the end: {smtp:,.0f} msg/s ({load()}), against "
            f"{self.smtp_rates[0]:,.0f} msg/s right after the dispatch"
        )


def main() -> None:
    # aiosmtpd logs every SMTP command at INFO, the setup's in-process tasks log each run.
    for name in ("mail.log", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=38)
    parser.add_argument("--wave", type=int, default=50, help="requests of the dispatch backlog")
    parser.add_argument("--requests", type=int, default=1000, help="requests, 1 company each")
    parser.add_argument("--filings", type=int, default=250, help="students filing over HTTP")
    parser.add_argument("--sequential", type=int, default=50, help="of them, one by one")
    parser.add_argument("--clients", type=int, default=4, help="HTTP clients at once")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="the worker's nice level: 10 as its service unit (docs/operations.md), 0 for none",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds, each wait")
    parser.add_argument("--many-timeout", type=float, default=600, help="seconds, many")
    args = parser.parse_args()
    if args.companies < 1 or args.wave < 1 or args.concurrency < 1 or args.requests < 0:
        raise SystemExit("--companies, --wave and --concurrency must be at least 1")

    call_command("migrate", verbosity=0)
    if not User.objects.filter(email__startswith="student0").exists():
        with in_process_tasks():  # the demo's policy, purposes and companies
            call_command("seed_demo", verbosity=0, stdout=io.StringIO())
    print(f"database: {connection.vendor}; {User.objects.count():,} users; {load()}")
    dispatch(args)


if __name__ == "__main__":
    main()
