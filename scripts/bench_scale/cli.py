"""The flags, and the order of a run: load what is missing, then measure."""

import argparse
import os

from benchlib import as_web_process
from django.conf import settings
from django.db import connection

import bench_scale as package
from audit.models import AuditEntry
from bench_scale.admin_pages import admin_pages
from bench_scale.api import changes_feed, consent_check
from bench_scale.jobs import disclosure_report, retention
from bench_scale.loading import load
from bench_scale.report import ScaleReport
from consent.models import ConsentEvent
from disclosure.models import DataRequest, RecipientTask
from portal.models import ActivityRecord, Employer, User


def main() -> None:
    parser = argparse.ArgumentParser(description=package.__doc__.split("\n")[0])
    parser.add_argument("--reload", action="store_true", help="drop the database, load again")
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--employers", type=int, default=30_000)
    parser.add_argument("--consent-events", type=int, default=1_000_000)
    parser.add_argument("--activity", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--heavy-activity", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per admin page")
    parser.add_argument("--api-requests", type=int, default=100)
    parser.add_argument(
        "--only",
        default="check,changes,admin,disclosure,retention",
        help="what to measure (comma-separated), default all",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="admin pages whose name contains one of these words (comma-separated; 'CSV' for "
        "the impact CSVs), default all",
    )
    args = parser.parse_args()
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    as_web_process()
    loaded = load(args)
    with open("/proc/loadavg") as loadavg:
        machine = f"load average {' '.join(loadavg.read().split()[:3])}, {os.cpu_count()} CPUs"
    sizes = {
        "students": User.objects.filter(is_staff=False).count(),
        "employers": Employer.objects.count(),
        "consent events": ConsentEvent.objects.count(),
        "activity records": ActivityRecord.objects.count(),
        "requests": DataRequest.objects.count(),
        "company tasks": RecipientTask.objects.count(),
        "audit entries": AuditEntry.objects.count(),
    }
    print(
        f"\nPostgreSQL {connection.pg_version // 10000}, {settings.DATABASES['default']['NAME']}; "
        + ", ".join(f"{n:,} {what}" for what, n in sizes.items())
    )
    print(f"{machine}; load {'skipped (data present)' if not loaded else f'{loaded:.0f} s'}\n")
    report = ScaleReport()
    only = set(args.only.split(","))
    if "check" in only:
        consent_check(report, args.api_requests)
    if "changes" in only:
        changes_feed(report, args.repeat)
    if "admin" in only:
        admin_pages(report, args.repeat, [w for w in args.pages.split(",") if w])
    if "disclosure" in only:
        disclosure_report(report)
    if "retention" in only:
        retention(report)
    report.explain_slow()
    with open("/proc/loadavg") as loadavg:
        print(f"\nload average at the end {' '.join(loadavg.read().split()[:3])}")
    print(
        f"{len(report.failed)} goal(s) not met"
        + (f": {', '.join(report.failed)}" if report.failed else "")
    )
