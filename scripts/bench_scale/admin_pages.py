"""Every admin list staff use (plain, searched, filtered, page 2 and a deep page), the
dashboard, the impact report and its CSVs, each timed through the whole Django stack."""

import time

from benchlib import Report
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEntry
from bench_scale.common import DEMO, HEAVY_EMAIL
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Purpose
from disclosure.models import DataRequest, RecipientTask, RequestEvent
from portal.models import ActivityRecord, Employer, User


def _page(report: Report, client: Client, name: str, url: str, *, repeat: int, goal_ms=500):
    """One warm-up request with its queries captured, then `repeat` timed ones."""
    reset_queries()  # the log holds 9,000 queries at most: a full one captures nothing
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    if response.status_code != 200:
        report.line(name, f"{url} answered {response.status_code}", "", False)
        return b""
    report.capture(name, captured.captured_queries)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        body = (
            b"".join(response.streaming_content)
            if hasattr(response, "streaming_content")
            else response.content
        )
        timings.append(time.perf_counter() - started)
    queries = len(captured.captured_queries)
    reset_queries()
    report.timing(name, timings, goal_ms, f"{queries:>3} q")
    return body


def admin_pages(report: Report, repeat: int, only: list[str] | None = None) -> None:
    staff = User.objects.get(email=DEMO.superuser.email)  # a superuser with a TOTP app
    client = Client()
    client.force_login(staff)
    bulk = User.objects.filter(email__startswith="bulk-").order_by("pk")
    student = bulk[bulk.count() // 2]
    heavy = User.objects.get(email=HEAVY_EMAIL)
    requests = DataRequest.objects.filter(student__email__startswith="bulk-").order_by("pk")
    request = requests[requests.count() // 2]
    popular = Employer.objects.order_by("pk").first()
    tail = Employer.objects.order_by("-pk").first()
    purpose = Purpose.objects.get(code="behaviour_analysis")

    def url(model, suffix="changelist", *args):
        return reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_{suffix}", args=args
        )

    pages = [
        ("dashboard", reverse("admin:index")),
        ("students", url(User)),
        ("students, search email", url(User) + f"?q={student.email}"),
        ("students, search name", url(User) + "?q=佐藤"),
        ("students, filter not staff", url(User) + "?is_staff__exact=0"),
        ("students, page 2", url(User) + "?p=2"),
        ("students, page 500", url(User) + "?p=500"),
        ("student page (heavy student)", url(User, "change", heavy.pk)),
        ("employers", url(Employer)),
        ("employers, search", url(Employer) + f"?q={tail.name}"),
        ("employers, page 100", url(Employer) + "?p=100"),
        ("consent events", url(ConsentEvent)),
        ("consent events, search student", url(ConsentEvent) + f"?q={student.email}"),
        ("consent events, filter withdraw", url(ConsentEvent) + "?action__exact=withdraw"),
        (
            "consent events, filter employer",
            url(ConsentEvent) + f"?employer__id__exact={popular.pk}",
        ),
        (
            "consent events, student's ledger",
            url(ConsentEvent) + f"?student__id__exact={student.pk}",
        ),
        ("consent events, page 2", url(ConsentEvent) + "?p=2"),
        ("consent events, page 1000", url(ConsentEvent) + "?p=1000"),
        ("consents (state)", url(Consent)),
        ("consents, filter granted", url(Consent) + "?granted__exact=1"),
        ("consents, search student", url(Consent) + f"?q={student.email}"),
        ("acceptances", url(PolicyAcceptance)),
        ("acceptances, page 2", url(PolicyAcceptance) + "?p=2"),
        ("activity records", url(ActivityRecord)),
        ("activity records, search student", url(ActivityRecord) + f"?q={student.email}"),
        ("activity records, filter kind", url(ActivityRecord) + "?kind__exact=application"),
        (
            "activity records, student's ledger",
            url(ActivityRecord) + f"?student__id__exact={heavy.pk}",
        ),
        ("activity records, page 2", url(ActivityRecord) + "?p=2"),
        ("activity records, page 1000", url(ActivityRecord) + "?p=1000"),
        ("requests", url(DataRequest)),
        ("requests, search reference", url(DataRequest) + f"?q={request.reference}"),
        ("requests, search student", url(DataRequest) + f"?q={request.student.email}"),
        ("requests, filter in progress", url(DataRequest) + "?status__exact=in_progress"),
        ("requests, filter overdue", url(DataRequest) + "?overdue=yes"),
        ("requests, page 2", url(DataRequest) + "?p=2"),
        ("requests, page 500", url(DataRequest) + "?p=500"),
        ("request page", url(DataRequest, "change", request.pk)),
        ("company tasks", url(RecipientTask)),
        ("company tasks, search reference", url(RecipientTask) + f"?q={request.reference}"),
        ("company tasks, filter overdue", url(RecipientTask) + "?overdue__exact=1"),
        ("company tasks, filter open", url(RecipientTask) + "?open=yes"),
        ("company tasks, page 2", url(RecipientTask) + "?p=2"),
        ("company tasks, page 500", url(RecipientTask) + "?p=500"),
        ("request events", url(RequestEvent)),
        ("request events, search reference", url(RequestEvent) + f"?q={request.reference}"),
        ("request events, page 2", url(RequestEvent) + "?p=2"),
        ("audit log", url(AuditEntry)),
        ("audit log, search", url(AuditEntry) + "?q=extend_due_date"),
        ("audit log, filter login", url(AuditEntry) + "?action__exact=login"),
        ("audit log, page 2", url(AuditEntry) + "?p=2"),
        ("audit log, page 500", url(AuditEntry) + "?p=500"),
        ("impact report", url(Purpose, "impact", purpose.pk)),
        (
            "impact report, page 2 of never-accepted",
            url(Purpose, "impact", purpose.pk) + "?never-accepted-page=2",
        ),
    ]
    if only:
        pages = [(name, address) for name, address in pages if any(w in name for w in only)]
    for name, address in pages:
        _page(report, client, f"admin {name}", address, repeat=repeat)
        report.explain_slow()
    for section in ("never-accepted", "unlisted") if not only or "CSV" in only else ():
        address = reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, section])
        body = _page(report, client, f"impact CSV {section}", address, repeat=1, goal_ms=10_000)
        report.explain_slow()
        lines = body.count(b"\n")
        print(f"{'':<46} ({lines:,} lines)")
