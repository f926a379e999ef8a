"""Every admin list staff use (plain, searched, filtered, page 2, a deep page by position
and the last page), the dashboard, the impact report and its CSVs, each timed through the
whole Django stack beside its own SQL sent raw; then every other list the admin has, and
its last page, so that no list escapes the 500 ms goal."""

from benchlib import Report
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from bench_scale.common import DEMO, HEAVY_EMAIL
from bench_scale.timing import deep_links, page_timing, streamed_peak
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Purpose
from consent.reports import CSV_CHUNK
from disclosure.models import DataRequest, RecipientTask, RequestEvent
from portal.models import ActivityRecord, Employer, User
from portal.shared.keyset import KeysetChangeList

IMPACT_GOAL_MS = 250  # issue 20


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

    def deep(name, model, depth):
        return [
            (f"{name}, {what}", url(model) + query)
            for what, query in deep_links(staff, model, depth)
        ]

    pages = [
        ("dashboard", reverse("admin:index")),
        ("students", url(User)),
        ("students, search email", url(User) + f"?q={student.email}"),
        ("students, search name", url(User) + "?q=佐藤"),
        ("students, filter not staff", url(User) + "?is_staff__exact=0"),
        ("students, page 2", url(User) + "?p=2"),
        ("students, page 500 (numbered: page 20)", url(User) + "?p=500"),
        *deep("students", User, 50_000),
        ("student page (heavy student)", url(User, "change", heavy.pk)),
        ("employers", url(Employer)),
        ("employers, search", url(Employer) + f"?q={tail.name}"),
        ("employers, page 100 (numbered: page 20)", url(Employer) + "?p=100"),
        *deep("employers", Employer, 20_000),
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
        ("consent events, page 1000 (numbered: page 20)", url(ConsentEvent) + "?p=1000"),
        *deep("consent events", ConsentEvent, 100_000),
        ("consents (state)", url(Consent)),
        ("consents, filter granted", url(Consent) + "?granted__exact=1"),
        ("consents, search student", url(Consent) + f"?q={student.email}"),
        *deep("consents", Consent, 100_000),
        ("acceptances", url(PolicyAcceptance)),
        ("acceptances, page 2", url(PolicyAcceptance) + "?p=2"),
        *deep("acceptances", PolicyAcceptance, 100_000),
        ("activity records", url(ActivityRecord)),
        ("activity records, search student", url(ActivityRecord) + f"?q={student.email}"),
        ("activity records, filter kind", url(ActivityRecord) + "?kind__exact=application"),
        (
            "activity records, student's ledger",
            url(ActivityRecord) + f"?student__id__exact={heavy.pk}",
        ),
        ("activity records, page 2", url(ActivityRecord) + "?p=2"),
        ("activity records, page 1000 (numbered: page 20)", url(ActivityRecord) + "?p=1000"),
        *deep("activity records", ActivityRecord, 100_000),
        ("requests", url(DataRequest)),
        ("requests, search reference", url(DataRequest) + f"?q={request.reference}"),
        ("requests, search student", url(DataRequest) + f"?q={request.student.email}"),
        ("requests, filter in progress", url(DataRequest) + "?status__exact=in_progress"),
        ("requests, filter overdue", url(DataRequest) + "?overdue=yes"),
        ("requests, page 2", url(DataRequest) + "?p=2"),
        ("requests, page 500 (numbered: page 20)", url(DataRequest) + "?p=500"),
        *deep("requests", DataRequest, 50_000),
        ("request page", url(DataRequest, "change", request.pk)),
        ("company tasks", url(RecipientTask)),
        ("company tasks, search reference", url(RecipientTask) + f"?q={request.reference}"),
        ("company tasks, filter overdue", url(RecipientTask) + "?overdue__exact=1"),
        ("company tasks, filter open", url(RecipientTask) + "?open=yes"),
        ("company tasks, page 2", url(RecipientTask) + "?p=2"),
        ("company tasks, page 500 (numbered: page 20)", url(RecipientTask) + "?p=500"),
        *deep("company tasks", RecipientTask, 50_000),
        ("request events", url(RequestEvent)),
        ("request events, search reference", url(RequestEvent) + f"?q={request.reference}"),
        ("request events, page 2", url(RequestEvent) + "?p=2"),
        *deep("request events", RequestEvent, 100_000),
        ("audit log", url(AuditEntry)),
        ("audit log, search", url(AuditEntry) + "?q=extend_due_date"),
        ("audit log, filter login", url(AuditEntry) + "?action__exact=login"),
        ("audit log, page 2", url(AuditEntry) + "?p=2"),
        ("audit log, page 500 (numbered: page 20)", url(AuditEntry) + "?p=500"),
        *deep("audit log", AuditEntry, 50_000),
        ("impact report (counts kept)", url(Purpose, "impact", purpose.pk)),
        ("impact report, counting again", url(Purpose, "impact", purpose.pk) + "?recount=1"),
        (
            "impact report, page 2 of never-accepted",
            url(Purpose, "impact", purpose.pk) + "?never-accepted-page=2",
        ),
    ]
    named = {
        model
        for model in admin.site._registry
        if any(address.startswith(url(model)) for _name, address in pages)
    }
    pages += every_other_list(named)
    if only:
        pages = [(name, address) for name, address in pages if any(w in name for w in only)]
    for name, address in pages:
        goal = IMPACT_GOAL_MS if name.startswith("impact report") else 500
        page_timing(report, client, f"admin {name}", address, repeat=repeat, goal_ms=goal)
        report.explain_slow()
    for section in ("never-accepted", "unlisted") if not only or "CSV" in only else ():
        address = reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, section])
        page_timing(report, client, f"impact CSV {section}", address, repeat=1, goal_ms=10_000)
        report.explain_slow()
        lines, size, peak = streamed_peak(client, address)
        print(
            f"{'':<58} ({lines:,} lines, {size / 1e6:.1f} MB streamed; at most "
            f"{peak / 1e6:.1f} MB held while streaming, the rows read {CSV_CHUNK:,} at a time)"
        )


def every_other_list(named: set) -> list[tuple[str, str]]:
    """Each list the admin has that the pages above do not name, and its last page: a list
    with numbered pages only (a plain ChangeList) by its page count, which is what a deep page
    costs it."""
    pages = []
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda m: m[0]._meta.label):
        if model in named:
            continue
        address = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        label = f"every list: {model._meta.label}"
        pages.append((label, address))
        if issubclass(model_admin.get_changelist(None), KeysetChangeList):
            pages.append((f"{label}, last page", address + "?p=last"))
        else:
            last = max(1, -(-model._default_manager.count() // model_admin.list_per_page))
            pages.append((f"{label}, last page (numbered: {last:,})", address + f"?p={last}"))
    return pages
