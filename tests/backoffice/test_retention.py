"""The daily retention job deletes what has outlived its purpose (issue 5, "Retention"): each
period exactly at and just past its boundary, what stays, idempotence, the audit entry, the
pages that used the deleted rows, the beat schedule and the settings."""

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from backoffice import retention
from backoffice.tasks import retention_run as retention_task
from consent.models import Provision
from consent.services import consent_grant, provision_record
from disclosure.models import (
    AnswerLink,
    Correction,
    DataRequest,
    RecipientTask,
    RequestEvent,
    RequestFile,
)
from disclosure.services import (
    recipient_task_answer,
    recipient_task_close,
    recipient_task_send,
    request_cancel,
    request_certificate_store,
    request_file,
    request_report_store,
)
from inferences.models import Inference, InferenceDispute, InferenceObjection
from portal.celery import app
from portal.models import ActivityRecord
from portal.shared.sealing import reveal, unseal
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    InferenceFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)

pytestmark = pytest.mark.django_db

TOKYO = timezone.get_fixed_timezone(9 * 60)
T0 = datetime(2023, 1, 10, 12, 0, tzinfo=TOKYO)
SECOND = timedelta(seconds=1)
TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")
REPORT = [
    ("report_pdf", "report.pdf", "application/pdf", b"%PDF-1.7 report"),
    ("report_json", "report.json", "application/json", b"{}"),
]


def days(n: int) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def clock(time_machine):
    def at(when):
        time_machine.move_to(when, tick=False)

    at(T0)
    return at


@pytest.fixture
def consent(clock):
    """A published policy with the provision purpose; students accept it a day before T0."""
    clock(T0 - days(1))
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])

    def student_with_companies(companies: int, **kwargs):
        student = UserFactory(**kwargs)
        accept(student, version)
        employers = [EmployerFactory() for _ in range(companies)]
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=provision)
        return student, employers

    clock(T0)
    return SimpleNamespace(provision=provision, student_with_companies=student_with_companies)


def token_of(task: RecipientTask) -> str:
    """From the email as it will be sent (queued, not sent here): the stored body holds the
    link only as a placeholder, the link itself sealed until sending."""
    task.refresh_from_db()
    message = task.email
    return TOKEN.search(reveal(message.body_text, unseal(message.sealed_secrets))).group(1)


@pytest.fixture
def requests(clock, consent):
    """At T0: R1 (deletion: X answers on day 2 with a file, staff close Y on day 5, so R1 is
    partially completed on day 5 and gets its certificate), R2 (deletion: Z answers on day 2,
    W never does: open), R3 (disclosure: report stored, its company never answers: open),
    R4 (disclosure: report stored, cancelled on day 1)."""
    staff = StaffFactory()
    made = {}
    for name, kind, companies in [
        ("R1", "deletion", 2),
        ("R2", "deletion", 2),
        ("R3", "disclosure", 1),
        ("R4", "disclosure", 1),
    ]:
        student, employers = consent.student_with_companies(companies, language="en")
        for employer in employers:
            provision_record(
                student=student, employer=employer, purpose=consent.provision, data_items="score"
            )
        made[name] = request_file(student=student, kind=kind, language="en")
        for task in made[name].tasks.all():
            recipient_task_send(task_id=task.pk)
    for name in ("R3", "R4"):
        request_report_store(request_id=made[name].pk, files=REPORT)
    x, y = made["R1"].tasks.order_by("pk")
    z, w = made["R2"].tasks.order_by("pk")
    tokens = {task.pk: token_of(task) for task in (x, y, z, w)}

    clock(T0 + days(1))
    request_cancel(request=made["R4"], reason="filed twice", by=staff)
    clock(T0 + days(2))
    recipient_task_answer(
        task=x, answer="deleted", answered_by="佐藤", file=("log.csv", "text/csv", b"a,b\n")
    )
    recipient_task_answer(task=z, answer="deleted", answered_by="鈴木")
    clock(T0 + days(5))
    recipient_task_close(task=y, by=staff, reason="the company closed down")
    request_certificate_store(request_id=made["R1"].pk, pdf=b"%PDF-1.7 cert", name="cert.pdf")
    clock(T0)

    r = {name: DataRequest.objects.get(pk=req.pk) for name, req in made.items()}
    assert [r[n].status for n in ("R1", "R2", "R3", "R4")] == [
        "partially_completed",
        "in_progress",
        "in_progress",
        "cancelled",
    ]
    return SimpleNamespace(r=r, x=x, y=y, z=z, w=w, tokens=tokens)


def links_of(*tasks) -> int:
    return AnswerLink.objects.filter(task__in=tasks).count()


def files_of(request) -> int:
    return RequestFile.objects.filter(request=request).count()


# --- activity records -----------------------------------------------------------------------


def test_activity_records_go_once_older_than_730_days(clock):
    student = UserFactory()
    old = ActivityRecordFactory(student=student, occurred_at=T0)
    young = ActivityRecordFactory(student=student, occurred_at=T0 + SECOND)

    clock(T0 + days(730))
    assert retention.activity_records_expire() == 0
    clock(T0 + days(730) + SECOND)
    assert retention.activity_records_expire() == 1

    assert not ActivityRecord.objects.filter(pk=old.pk).exists()
    assert ActivityRecord.objects.filter(pk=young.pk).exists()
    assert retention.activity_records_expire() == 0


# --- sessions -------------------------------------------------------------------------------


def test_sessions_go_once_past_their_expiry_and_the_signed_in_stay(client, settings):
    from django.contrib.sessions.models import Session

    from portal.sessions import stored_key

    settings.RETENTION_BATCH_SIZE = 2
    for _ in range(5):
        Client().force_login(UserFactory())
    Session.objects.update(expire_date=timezone.now() - SECOND)
    client.force_login(UserFactory())
    mine = stored_key(client.cookies["sessionid"].value)

    assert retention.sessions_expire() == 5
    assert list(Session.objects.values_list("session_key", flat=True)) == [mine]
    assert client.get(reverse("dashboard")).status_code == 200
    assert retention.sessions_expire() == 0


# --- inferences -----------------------------------------------------------------------------


def test_inferences_go_a_year_after_they_were_made_with_their_disputes(clock):
    old = InferenceFactory(made_at=T0)
    young = InferenceFactory(made_at=T0 + SECOND, sender=old.sender, student=old.student)
    InferenceDispute.objects.create(
        inference=old, student=old.student, statement="違う", language="ja"
    )
    objection = InferenceObjection.objects.create(
        student=old.student, model_code=old.model.code, model=old.model, language="ja"
    )

    clock(T0 + days(365))
    assert retention.inferences_expire() == 0
    clock(T0 + days(365) + SECOND)
    assert retention.inferences_expire() == 1

    assert list(Inference.objects.values_list("pk", flat=True)) == [young.pk]
    assert not InferenceDispute.objects.exists()
    assert InferenceObjection.objects.filter(pk=objection.pk).exists()  # holds no result
    assert retention.inferences_expire() == 0


def test_the_run_counts_the_inferences_and_records_their_period(clock, settings):
    settings.RETENTION_INFERENCE_DAYS = 30
    InferenceFactory(made_at=T0 - days(31))

    counts = retention.retention_run()

    assert counts["inferences"] == 1
    entry = AuditEntry.objects.get(name="backoffice.retention")
    assert entry.changes["periods_days"]["inferences"] == 30


# --- provision records ----------------------------------------------------------------------


def test_provision_records_go_3_years_after_their_last_provision(clock, consent):
    student, (employer,) = consent.student_with_companies(1)
    single = provision_record(
        student=student, employer=employer, purpose=consent.provision, data_items="score"
    )
    clock(T0 + days(30))
    bulk = provision_record(
        student=student,
        employer=employer,
        purpose=consent.provision,
        data_items="score, views",
        first_provided_at=T0,
        provided_at=T0 + days(30),
    )

    clock(T0 + days(1095))
    assert retention.provisions_expire() == 0
    clock(T0 + days(1095) + SECOND)
    assert retention.provisions_expire() == 1
    # The bulk record began on the same day but its last provision was 30 days later.
    assert list(Provision.objects.values_list("pk", flat=True)) == [bulk.pk]
    assert not Provision.objects.filter(pk=single.pk).exists()

    clock(T0 + days(30 + 1095) + SECOND)
    assert retention.provisions_expire() == 1
    assert not Provision.objects.exists()


# --- answer links ---------------------------------------------------------------------------


def test_answer_links_go_90_days_after_the_company_answered(clock, requests):
    answered = T0 + days(2)

    clock(answered + days(90))
    retention.answer_links_expire()
    assert links_of(requests.x, requests.z) == 2
    clock(answered + days(90) + SECOND)
    retention.answer_links_expire()

    assert links_of(requests.x, requests.z) == 0
    # Y was closed by staff: counted from when its request closed (day 5). W still waits.
    assert links_of(requests.y) == 1
    assert links_of(requests.w) == 1


def test_a_closed_tasks_links_go_90_days_after_its_request_closed(clock, requests):
    closed = requests.r["R1"].completed_at

    clock(closed + days(90))
    retention.answer_links_expire()
    assert links_of(requests.y) == 1
    clock(closed + days(90) + SECOND)
    retention.answer_links_expire()
    assert links_of(requests.y) == 0


def test_the_links_of_a_company_still_to_answer_stay(clock, requests):
    clock(T0 + days(3650))
    retention.answer_links_expire()

    assert links_of(requests.w) == 1
    assert AnswerLink.objects.filter(task__request=requests.r["R3"]).count() == 1


def test_a_used_link_shows_the_answer_until_it_goes_then_it_is_an_unknown_link(
    client, clock, requests
):
    url = reverse("disclosure:answer", args=[requests.tokens[requests.x.pk]])
    clock(T0 + days(2 + 90))
    retention.answer_links_expire()
    assert client.get(url).status_code == 200  # the recorded answer

    clock(T0 + days(2 + 90) + SECOND)
    retention.answer_links_expire()
    gone = client.get(url)
    unknown = client.get(reverse("disclosure:answer", args=["never-issued-" + "x" * 30]))

    assert gone.status_code == unknown.status_code == 404
    # The task and its recorded answer stay.
    requests.x.refresh_from_db()
    assert requests.x.answer == "deleted" and requests.x.answered_by == "佐藤"


# --- request files --------------------------------------------------------------------------


def test_files_of_a_closed_request_go_a_year_after_it_closed(clock, requests):
    r1, r4 = requests.r["R1"], requests.r["R4"]
    assert files_of(r1) == 2 and files_of(r4) == 2  # R1: the company's file and certificate

    clock(r4.completed_at + days(365))
    assert retention.request_files_expire() == (0, [])
    clock(r4.completed_at + days(365) + SECOND)
    assert retention.request_files_expire() == (2, [r4.reference])
    assert files_of(r4) == 0 and files_of(r1) == 2

    clock(r1.completed_at + days(365) + SECOND)
    assert retention.request_files_expire() == (2, [r1.reference])
    assert files_of(r1) == 0


def test_the_request_its_tasks_and_its_timeline_stay_when_its_files_go(clock, requests):
    r1 = requests.r["R1"]
    events = list(RequestEvent.objects.filter(request=r1).values_list("pk", "kind"))
    tasks = list(RecipientTask.objects.filter(request=r1).values_list("pk", "status", "answer"))

    clock(r1.completed_at + days(365) + SECOND)
    retention.request_files_expire()

    r1.refresh_from_db()
    assert r1.status == "partially_completed" and r1.completed_at is not None
    assert list(RequestEvent.objects.filter(request=r1).values_list("pk", "kind")) == events
    assert (
        list(RecipientTask.objects.filter(request=r1).values_list("pk", "status", "answer"))
        == tasks
    )


def test_the_files_of_an_open_request_stay(clock, requests):
    clock(T0 + days(3650))
    retention.request_files_expire()

    assert files_of(requests.r["R3"]) == 2


def test_the_students_page_says_the_files_were_deleted_instead_of_linking_to_them(
    client, clock, requests
):
    r1 = requests.r["R1"]
    page = reverse("disclosure:request_detail", args=[r1.reference])
    certificate = RequestFile.objects.get(request=r1, kind="certificate_pdf")
    download = reverse("disclosure:file", args=[r1.reference, certificate.pk])

    clock(r1.completed_at + days(365))
    retention.request_files_expire()
    client.force_login(r1.student)  # a session lasts two weeks: sign in on the day
    before = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert download in before
    assert "retention period" not in before

    clock(r1.completed_at + days(365) + SECOND)
    retention.request_files_expire()
    client.force_login(r1.student)
    after = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "were deleted 365 days after it closed, at the end of their retention period" in after
    assert download not in after
    assert "being prepared" not in after
    assert "Everything that happened" in after  # the timeline is still there
    assert client.get(download).status_code == 404


# --- the whole run --------------------------------------------------------------------------


def test_a_run_deletes_each_kind_logs_the_counts_and_writes_one_audit_entry(
    clock, requests, caplog
):
    ActivityRecordFactory(occurred_at=T0 - days(800))
    ActivityRecordFactory(occurred_at=T0)
    caplog.set_level("INFO", logger="backoffice.retention")

    clock(T0 + days(400))
    counts = retention.retention_run()

    # Activity: the one 800 days before T0. Provisions: none are 3 years old. Links: those
    # of X, Y, Z and R4's company (done over 90 days ago); W's and R3's company's stay.
    # Files: R1's and R4's; R3 is open.
    assert counts == {
        "activity_records": 1,
        "inferences": 0,  # below
        "provisions": 0,
        "answer_links": 4,
        "request_files": 4,
        "idempotency_keys": 0,
        "closed_accounts": 0,  # tests/disclosure/test_account_close.py
        "closed_accounts_emails": 0,  # likewise
        "sessions": 0,  # below
    }
    assert (
        "retention: deleted 1 activity_records, 0 inferences, 0 provisions, 4 answer_links"
        in caplog.text
    )
    (entry,) = AuditEntry.objects.filter(name="backoffice.retention")
    assert entry.action == AuditEntry.Action.SYSTEM
    assert entry.changes["request_files"] == 4
    assert entry.changes["answer_links"] == 4
    assert links_of(requests.w) == 1
    assert entry.changes["requests_with_files_removed"] == sorted(
        [requests.r["R1"].reference, requests.r["R4"].reference]
    )
    assert entry.changes["periods_days"]["request_files"] == 365


def test_a_second_run_deletes_nothing_and_writes_no_audit_entry(clock, requests):
    ActivityRecordFactory(occurred_at=T0 - days(800))
    clock(T0 + days(400))
    first = retention.retention_run()
    assert sum(first.values()) > 0

    second = retention.retention_run()

    assert second == dict.fromkeys(first, 0)
    assert AuditEntry.objects.filter(name="backoffice.retention").count() == 1


def test_a_large_backlog_is_deleted_in_batches(clock, settings):
    settings.RETENTION_BATCH_SIZE = 2
    student = UserFactory()
    ActivityRecord.objects.bulk_create(
        ActivityRecord(student=student, kind="page_view", occurred_at=T0 - days(800 + i))
        for i in range(5)
    )
    keep = ActivityRecordFactory(student=student, occurred_at=T0)

    with CaptureQueriesContext(connection) as queries:
        deleted = retention.activity_records_expire()

    assert deleted == 5
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert list(ActivityRecord.objects.values_list("pk", flat=True)) == [keep.pk]


def test_the_periods_are_read_from_settings(clock, settings):
    settings.RETENTION_ACTIVITY_DAYS = 10
    record = ActivityRecordFactory(occurred_at=T0 - days(10) - SECOND)

    assert retention.activity_records_expire() == 1
    assert not ActivityRecord.objects.filter(pk=record.pk).exists()


def test_the_celery_task_runs_the_job(clock, requests):
    ActivityRecordFactory(occurred_at=T0 - days(800))

    result = retention_task.delay().get()

    assert result["activity_records"] == 1
    assert AuditEntry.objects.filter(name="backoffice.retention").count() == 1


# --- schedule and settings ------------------------------------------------------------------


def test_beat_runs_the_job_once_a_day():
    entry = settings.CELERY_BEAT_SCHEDULE["retention-run"]

    assert entry["task"] == "backoffice.tasks.retention_run"
    schedule = entry["schedule"]
    assert isinstance(schedule, crontab)
    assert len(schedule.hour) == 1 and len(schedule.minute) == 1
    assert schedule.day_of_week == set(range(7)) and len(schedule.day_of_month) == 31
    assert "backoffice.tasks.retention_run" in app.tasks


DEFAULTS = {
    "RETENTION_ACTIVITY_DAYS": 730,
    "RETENTION_PROVISION_DAYS": 1095,
    "RETENTION_ANSWER_LINK_DAYS": 90,
    "RETENTION_REQUEST_FILE_DAYS": 365,
    "RETENTION_INFERENCE_DAYS": 365,
}


def settings_in_fresh_process(**env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        f"print(*(getattr(settings, n) for n in {list(DEFAULTS)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_are_the_documented_periods():
    result = settings_in_fresh_process()

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(v) for v in DEFAULTS.values()]


def test_the_environment_overrides_each_period():
    result = settings_in_fresh_process(
        RETENTION_ACTIVITY_DAYS="400",
        RETENTION_PROVISION_DAYS="1200",
        RETENTION_ANSWER_LINK_DAYS="30",
        RETENTION_REQUEST_FILE_DAYS="730",
        RETENTION_INFERENCE_DAYS="180",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["400", "1200", "30", "730", "180"]


@pytest.mark.parametrize("value", ["two years", "0", "-5"])
def test_a_malformed_period_stops_the_process_and_names_the_variable(value):
    result = settings_in_fresh_process(RETENTION_ACTIVITY_DAYS=value)

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert "RETENTION_ACTIVITY_DAYS" in error


def _correction(student, **about):
    request = DataRequest.objects.create(
        student=student,
        kind=DataRequest.Kind.CORRECTION,
        reference=f"R-TEST-{DataRequest.objects.count()}",
        due_at=timezone.now() + days(30),
    )
    return Correction.objects.create(
        request=request, target_label="その記録", wrong="違う", outcome="disputed", **about
    )


def test_a_batch_stays_a_few_statements_when_a_correction_points_at_its_rows(clock, settings):
    # Django's own delete() reads the rows and deletes them a hundred at a time as soon as a
    # relation (here the correction's SET_NULL) points at them: 9,000 statements for 1M rows.
    settings.RETENTION_BATCH_SIZE = 250
    student = UserFactory()
    ActivityRecord.objects.bulk_create(
        ActivityRecord(student=student, kind="page_view", occurred_at=T0 - days(800 + i % 7))
        for i in range(600)
    )
    keep = ActivityRecordFactory(student=student, occurred_at=T0)
    disputed = ActivityRecord.objects.filter(occurred_at__lt=T0).order_by("pk")[300]
    correction = _correction(student, target="activity", activity=disputed)
    kept = _correction(student, target="activity", activity=keep)

    with CaptureQueriesContext(connection) as queries:
        deleted = retention.activity_records_expire()

    assert deleted == 600
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # Three batches (250, 250, 100), each: its last key read, whether it has rows, the links
    # nulled, one DELETE.
    assert len(statements) == 3 * 4
    assert sum(s.startswith("DELETE") for s in statements) == 3
    assert not [s for s in statements if '"portal_activityrecord"."kind"' in s]  # no row read
    assert list(ActivityRecord.objects.values_list("pk", flat=True)) == [keep.pk]
    correction.refresh_from_db()
    kept.refresh_from_db()
    assert correction.activity_id is None and correction.target_label == "その記録"
    assert kept.activity_id == keep.pk


def test_an_expired_result_takes_its_dispute_and_leaves_the_correction_about_it(clock):
    old = InferenceFactory(made_at=T0)
    young = InferenceFactory(made_at=T0 + days(400), sender=old.sender, student=old.student)
    dispute = InferenceDispute.objects.create(
        inference=old, student=old.student, statement="違う", language="ja"
    )
    correction = _correction(old.student, target="inference", inference=old, dispute=dispute)

    clock(T0 + days(366))
    assert retention.inferences_expire() == 1

    assert list(Inference.objects.values_list("pk", flat=True)) == [young.pk]
    assert not InferenceDispute.objects.exists()
    correction.refresh_from_db()
    assert (correction.inference_id, correction.dispute_id) == (None, None)
    assert correction.target_label == "その記録"
