"""The run: each part in turn, its figures with their goals and the load."""

import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import Report
from django.core.management import call_command
from django.db import connection

from bench_wave import common
from bench_wave.bootstrap import (
    ARGS,
    BROKER_PORT,
    DATABASE_NAME,
    DATABASE_URL,
)
from bench_wave.common import (
    WORKER,
    load,
    note,
)
from bench_wave.seeding import (
    Seed,
)
from bench_wave.wave import (
    Wave,
)
from bench_wave.workspace import (
    bulk_answer,
    workspace,
)
from portal.models import Employer
from tests.faults.harness import PrivateRedis


class WaveReport(Report):
    """The report, saying which part a figure that missed its goal belongs to (both waves
    print the same names)."""

    part = ""

    def line(self, name: str, figures: str, goal: str, ok: bool | None) -> None:
        super().line(name, figures, goal, ok)
        if ok is False:
            self.failed[-1] = f"{self.part}: {name}"


def main() -> None:
    # aiosmtpd logs every SMTP command at INFO (tens of thousands here), and the settings'
    # root logger shows INFO.
    for name in ("mail.log", "celery.app.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    per_request = ARGS.per_request == "on" or (ARGS.per_request == "auto" and ARGS.students <= 200)
    logs = Path(tempfile.mkdtemp(prefix="bench-wave-"))
    BROKER = common.BROKER = PrivateRedis(logs)  # the bulk answer reads its queue
    BROKER.port = BROKER_PORT  # the settings already name it
    BROKER.start()
    failed = True
    try:
        call_command("migrate", verbosity=0)
        seed = Seed()
        report = WaveReport(load=True)
        print(
            f"bench-wave: PostgreSQL {connection.pg_version // 10000} ({DATABASE_NAME}), a "
            f"private redis-server, a {WORKER} (2 processes: the machine's {os.cpu_count()} "
            f"cores), an SMTP sink on loopback; load average {load()}",
            flush=True,
        )
        if "wave" in ARGS.parts:
            report.part = "1"
            print(
                f"\n1. The wave on the daily digest: {ARGS.students:,} students x "
                f"{ARGS.companies} companies",
                flush=True,
            )
            Wave(seed, report, delivery=Employer.Delivery.DAILY, label="daily", logs=logs).run(
                BROKER
            )
        if ARGS.parts & {"workspace", "bulk"}:
            report.part = "2-3"
            print(
                f"\n2-3. One company's workspace with {ARGS.workspace_tasks:,} open tasks; the "
                f"bulk answer of {ARGS.bulk_tasks:,} (no worker runs: what they queue stays "
                "in the broker)",
                flush=True,
            )
            BROKER.flush()
            started = time.monotonic()
            employer, contact, day = seed.workspace_company(ARGS.workspace_tasks, ARGS.bulk_tasks)
            note(f"{ARGS.workspace_tasks:,} tasks made in {time.monotonic() - started:.0f} s")
            connection.cursor().execute("ANALYZE")  # as autovacuum would, after a bulk load
            benchlib.as_web_process()
            client = workspace(report, employer, contact)
            if "bulk" in ARGS.parts:
                bulk_answer(report, client, employer, day)
        if per_request:
            report.part = "4"
            why = (
                "--per-request on"
                if ARGS.per_request == "on"
                else "on by default up to 200 students"
            )
            print(
                f"\n4. The wave one email per task: {ARGS.students:,} students x "
                f"{ARGS.companies} companies ({why})",
                flush=True,
            )
            BROKER.flush()  # the bulk answer's certificates are not this wave's work
            Wave(seed, report, delivery=Employer.Delivery.EACH, label="each", logs=logs).run(BROKER)
        else:
            print(
                f"\n4. The wave one email per task: not run ({ARGS.students:,} students > 200; "
                f"--per-request on runs it: {ARGS.students * ARGS.companies:,} company emails, "
                "issue 20's goal 15 minutes at 2,000 x 38)",
                flush=True,
            )
        print(
            f"\nload average {load()}; {len(report.failed)} goal(s) not met"
            + (f"; {'; '.join(report.failed)}" if report.failed else ""),
            flush=True,
        )
        failed = False
    finally:
        BROKER.stop()
        connection.close()
        if ARGS.keep:
            print(f"kept the database {DATABASE_NAME}", file=sys.stderr)
        else:
            benchlib.database_drop(DATABASE_URL)
        if failed:
            print(f"worker and beat logs: {logs}", file=sys.stderr)
        else:
            shutil.rmtree(logs, ignore_errors=True)
