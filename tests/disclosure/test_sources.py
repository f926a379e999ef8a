"""The job site's own systems (DataSource) in every request: the portal's signed call, the
claim, retries then failure shown to staff and the student, the signed callback, completion
only when companies and sources are all done, the certificate and the report listing them,
and a real round trip with scripts/reference_source.py run as a subprocess on loopback."""

import importlib.util
import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from disclosure import signing, tasks
from disclosure.models import DataRequest, DataSource, RequestFile, SourceTask
from disclosure.services import (
    recipient_task_answer,
    request_file,
    requests_sweep,
    source_task_call,
    source_task_recall,
)
from portal.models import ActivityRecord
from tests.disclosure.test_dispatch import student_with_recipients
from tests.factories import StaffFactory
from tests.ports import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reference_source.py"
_spec = importlib.util.spec_from_file_location("reference_source", SCRIPT)
reference_source = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_source)


def pdf_text(content) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(bytes(content))).pages)


class SilentSource(reference_source.Source):
    """Takes calls (202) and never answers: the test answers in its place."""

    def answer_later(self, call):
        pass


@pytest.fixture
def silent_source():
    source = SilentSource(secret=SECRET, name="silent", holds="x", delay=0, log=lambda *a: None)
    server = reference_source.serve(source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    source.url = f"http://127.0.0.1:{server.server_port}/"
    yield source
    server.shutdown()
    server.server_close()


# Two reference sources call back at once, each answered by a live-server thread that
# writes: SQLite's shared in-memory test database refuses concurrent writers ("table is
# locked", seen once in a parallel CI run), so these run on the PostgreSQL pass.
THREADS_WRITE_AT_ONCE = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the portal's threads write at once; SQLite's shared in-memory test database "
    "refuses that (table is locked). Run on PostgreSQL.",
)

SECRET = "s3cret"  # noqa: S105 - a test value


def make_source(url, *, name="応募管理システム / Applications", secret=SECRET) -> DataSource:
    return DataSource.objects.create(name=name, holds="応募履歴", endpoint=url, secret=secret)


def callback(client, task: SourceTask, body: dict, *, secret=None, now=None):
    raw = json.dumps(body).encode()
    headers = signing.sign(secret or task.source.secret, raw, now=now)
    return client.post(
        reverse("disclosure:source_callback", args=[task.request.public_id, task.source_id]),
        data=raw,
        content_type="application/json",
        headers=headers,
    )


# Signing ----------------------------------------------------------------------------------
def test_signature_good_bad_and_replayed():
    body = b'{"a":1}'
    headers = signing.sign("k", body, now=1_000_000)
    ts, sig = headers[signing.TIMESTAMP_HEADER], headers[signing.SIGNATURE_HEADER]
    assert signing.verify("k", body, timestamp=ts, sig=sig, now=1_000_010) is None
    assert signing.verify("other", body, timestamp=ts, sig=sig, now=1_000_010) == "bad signature"
    assert signing.verify("k", body + b" ", timestamp=ts, sig=sig, now=1_000_010)
    # The timestamp is signed: changing it to look fresh breaks the signature.
    assert signing.verify("k", body, timestamp="1000300", sig=sig, now=1_000_300)
    assert signing.verify("k", body, timestamp=ts, sig=sig, now=1_000_301) == "stale timestamp"
    assert signing.verify("k", body, timestamp=None, sig=None) == "missing signature"


def test_endpoint_must_be_https_except_on_loopback():
    from django.core.exceptions import ValidationError

    for ok in (
        "https://apps.internal.example/portal",
        "http://127.0.0.1:8101/",
        "http://localhost:1/",
    ):
        DataSource(name="a", holds="b", endpoint=ok).full_clean()
    with pytest.raises(ValidationError):
        DataSource(name="a", holds="b", endpoint="http://apps.internal.example/").full_clean()


# The call ---------------------------------------------------------------------------------
def test_the_call_is_signed_and_claimed_once_even_if_queued_twice(
    silent_source, django_capture_on_commit_callbacks
):
    student, _employers = student_with_recipients(("ja",))
    source = make_source(silent_source.url)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request, source=source)
    assert task.status == SourceTask.Status.CALLED and task.attempts == 1
    # A second message for the same call finds nothing to claim.
    assert tasks.source_call.apply(args=[task.pk]).get() == "skipped"
    assert source_task_call(task_id=task.pk) == "skipped"
    assert len(silent_source.calls) == 1
    [call] = silent_source.calls
    assert call == {
        "request": str(request.public_id),
        "kind": "deletion",
        "student": str(student.public_id),
        "callback": call["callback"],
    }
    assert call["callback"].endswith(f"/sources/callback/{request.public_id}/{source.pk}/")


def test_retries_then_fails_with_the_error_shown_to_staff_and_the_student(
    client, django_capture_on_commit_callbacks
):
    student, _employers = student_with_recipients(("ja",))
    make_source(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    assert task.status == SourceTask.Status.FAILED
    assert task.attempts == 5
    assert "ConnectionError" in task.last_error
    kinds = list(request.events.values_list("kind", flat=True))
    assert kinds.count("source_retry") == 4 and kinds.count("source_failed") == 1

    client.force_login(student)
    page = client.get(reverse("disclosure:request_detail", args=[request.reference]))
    text = page.content.decode()
    assert "応募管理システム / Applications" in text
    assert "ConnectionError" not in text  # the technical error is for staff
    assert "could not be reached" in text or "接続できません" in text or "staff" in text

    staff = StaffFactory()
    client.force_login(staff)
    admin_page = client.get(reverse("admin:disclosure_datarequest_change", args=[request.pk]))
    assert admin_page.status_code == 200
    assert "ConnectionError" in admin_page.content.decode()


def test_a_4xx_fails_at_once(silent_source, django_capture_on_commit_callbacks):
    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url, secret="not-what-the-source-has")  # the source answers 401
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.CESSATION)
    task = SourceTask.objects.get(request=request)
    assert (task.status, task.attempts) == (SourceTask.Status.FAILED, 1)
    assert "401" in task.last_error


def test_the_sweep_requeues_unclaimed_calls(silent_source, django_capture_on_commit_callbacks):
    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url)
    with django_capture_on_commit_callbacks(execute=False):  # the broker lost the message
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    SourceTask.objects.filter(pk=task.pk).update(queued_at=None)
    swept = requests_sweep()
    assert swept["source_calls"] == [task.pk]
    task.refresh_from_db()
    assert task.status == SourceTask.Status.CALLED
    assert len(silent_source.calls) == 1


# The callback -----------------------------------------------------------------------------
def test_the_callback_checks_the_signature_and_records_once(
    client, silent_source, django_capture_on_commit_callbacks
):
    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    assert callback(client, task, {"answer": "confirmed"}, secret="wrong").status_code == 401
    stale = callback(client, task, {"answer": "confirmed"}, now=time.time() - 600)
    assert stale.status_code == 401 and stale.json() == {"error": "stale timestamp"}
    assert callback(client, task, {"answer": "disclosed"}).status_code == 400  # not for deletion
    url = reverse("disclosure:source_callback", args=[request.public_id, 999999])
    assert client.post(url, data=b"{}", content_type="application/json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(client, task, {"answer": "confirmed"}).status_code == 200
    assert callback(client, task, {"answer": "confirmed"}).status_code == 409
    task.refresh_from_db()
    assert (task.status, task.answer) == (SourceTask.Status.ANSWERED, "confirmed")
    assert request.events.filter(kind="source_answered").count() == 1


def test_completes_only_when_companies_and_sources_are_all_done_and_the_certificate_lists_them(
    client, silent_source, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    make_source(silent_source.url)
    make_source(silent_source.url, name="閲覧履歴基盤 / Browsing history")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    first, second = SourceTask.objects.filter(request=request).order_by("source__name")
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(task=request.tasks.get(), answer="deleted", answered_by="担当 佐藤")
        assert callback(client, first, {"answer": "confirmed"}).status_code == 200
    request.refresh_from_db()
    assert request.is_open  # one source still to answer
    with django_capture_on_commit_callbacks(execute=True):
        assert callback(client, second, {"answer": "held_none"}).status_code == 200
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    certificate = request.files.get(kind=RequestFile.Kind.CERTIFICATE_PDF)
    text = pdf_text(certificate.content)
    assert "応募管理システム" in text and "閲覧履歴基盤" in text
    assert employer.name in text


# The real round trip ------------------------------------------------------------------------
@pytest.fixture
def reference_sources(live_server, settings):
    settings.SITE_URL = live_server.url
    started = []
    for name, holds, secret in (
        ("応募管理システム / Applications", "応募履歴", "secret-a"),
        ("閲覧履歴基盤 / Browsing history", "閲覧履歴", "secret-b"),
    ):
        # Port 0: the source binds a free port itself and says which, so no other server
        # started meanwhile can take it (see tests/ports.py).
        # --delay: the answer comes after the filing page is done; on SQLite (one shared
        # in-memory database) a callback writing while the filing still writes is refused.
        proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--port",
                "0",
                "--secret",
                secret,
                "--name",
                name,
                "--holds",
                holds,
                "--delay",
                "1.5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        said = proc.stdout.readline()
        listening = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", said)
        if not listening:
            proc.wait(10)
            pytest.fail(f"the reference source did not start: {said}{proc.stdout.read()}")
        port = int(listening.group(1))
        DataSource.objects.create(
            name=name, holds=holds, endpoint=f"http://127.0.0.1:{port}/", secret=secret
        )
    yield started
    for proc in started:
        proc.terminate()
        proc.wait(10)


def wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@THREADS_WRITE_AT_ONCE
@pytest.mark.django_db(transaction=True)
def test_disclosure_round_trip_with_two_reference_sources(reference_sources):
    student, [employer] = student_with_recipients(("ja",))
    request = request_file(student=student, kind=DataRequest.Kind.DISCLOSURE)
    assert wait_for(
        lambda: SourceTask.objects.filter(request=request, status="answered").count() == 2
    ), list(SourceTask.objects.values_list("status", "last_error"))
    request.refresh_from_db()
    assert request.is_open  # the company has not answered yet
    recipient_task_answer(task=request.tasks.get(), answer="disclosed", answered_by="担当 佐藤")
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    report = json.loads(bytes(request.files.get(kind=RequestFile.Kind.REPORT_JSON).content))
    by_name = {s["name"]: s for s in report["sources"]}
    assert set(by_name) == {"応募管理システム / Applications", "閲覧履歴基盤 / Browsing history"}
    rows = by_name["応募管理システム / Applications"]["data"]["rows"]
    assert rows == reference_source.sample_rows(
        "応募管理システム / Applications", "応募履歴", str(student.public_id)
    )
    pdf = pdf_text(request.files.get(kind=RequestFile.Kind.REPORT_PDF).content)
    squeezed = "".join(pdf.split())  # the PDF wraps long lines
    assert "閲覧履歴基盤" in squeezed and "".join(rows[0]["item"].split()) in squeezed, pdf[-1500:]
    certificate = pdf_text(request.files.get(kind=RequestFile.Kind.CERTIFICATE_PDF).content)
    assert "応募管理システム" in certificate and "閲覧履歴基盤" in certificate


@THREADS_WRITE_AT_ONCE
@pytest.mark.django_db(transaction=True)
def test_deletion_round_trip_every_source_confirms(reference_sources):
    student, [employer] = student_with_recipients(("ja",))
    request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    recipient_task_answer(task=request.tasks.get(), answer="deleted", answered_by="担当 佐藤")
    assert wait_for(lambda: DataRequest.objects.get(pk=request.pk).status == "completed")
    answers = set(SourceTask.objects.filter(request=request).values_list("answer", flat=True))
    assert answers == {"confirmed"}
    assert wait_for(lambda: request.files.filter(kind="certificate_pdf").exists())


def test_a_source_that_never_answers_is_marked_overdue_once(
    client, silent_source, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    later = timezone.now() + timedelta(days=15)
    assert len(requests_sweep(now=later)["sources_overdue"]) == 1
    assert requests_sweep(now=later)["sources_overdue"] == []
    assert request.events.filter(kind="source_overdue").count() == 1
    client.force_login(student)
    page = client.get(reverse("disclosure:request_detail", args=[request.reference]))
    assert SourceTask.objects.get(request=request).overdue
    assert page.status_code == 200


@THREADS_WRITE_AT_ONCE
@pytest.mark.django_db(transaction=True)
def test_done_when_sso_student_deletion_reaches_both_sources_and_every_company(
    client, oidc_provider, settings, reference_sources, mailoutbox
):
    """The issue's "done when": a student signs in through the test OIDC provider, the site
    posts activity for them through the API, they file a deletion on the page, both
    reference sources and every company confirm, and the certificate lists them all."""
    from consent.api.keys import api_key_create
    from consent.services import consent_grant, provision_record
    from tests.disclosure.test_api_activity import post, record, results
    from tests.factories import (
        EmployerFactory,
        PurposeFactory,
        accept,
        opt_in_purposes,
        published_version,
    )
    from tests.sso.site import portal_settings_for
    from tests.sso.test_sign_in import sign_in, signed_in_user

    settings.SOCIALACCOUNT_PROVIDERS = portal_settings_for(oidc_provider)
    job_site = oidc_provider
    job_site.user("sakura", email="sakura@example.jp", name="佐倉 桜")
    sign_in(client, job_site, "sakura")
    student = signed_in_user(client)
    assert student is not None
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    accept(student, version)  # the policy page after the first sign-in, as the SSO tests show
    employers = [EmployerFactory(language=lang) for lang in ("ja", "en")]
    for employer in employers:
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    _site, site_key = api_key_create(name="Job site", scopes=["activity:write"])
    sent = [record(student, employer=employer) for employer in employers]
    assert results(post(client, {"records": sent}, site_key)) == [("stored", 201, None)] * 2
    assert ActivityRecord.objects.filter(student=student).count() == 2

    form = {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""}
    response = client.post(reverse("disclosure:request_new"), form)
    # No portal password: the POST is held while allauth mails a code to confirm it is them.
    assert response["Location"].startswith("/accounts/reauthenticate/code/")
    response = client.post(  # "mail me a code"
        response["Location"], {"recipient": "sakura@example.jp", "next": "/requests/new/"}
    )
    body = mailoutbox[-1].body
    codes = re.findall(r"^\s*([A-Za-z0-9-]{6,12})\s*$", body, re.M)
    assert codes, body
    response = client.post(
        reverse("account_confirm_reauthentication_code"),
        {"code": codes[-1], "next": "/requests/new/"},
    )
    assert response.status_code == 302
    assert "/requests/R-" in response["Location"], response["Location"]
    request = DataRequest.objects.get(student=student, kind="deletion")
    assert wait_for(
        lambda: SourceTask.objects.filter(request=request, answer="confirmed").count() == 2
    )
    for task in request.tasks.all():
        recipient_task_answer(task=task, answered_by="担当 佐藤", answer="deleted")
    assert wait_for(lambda: request.files.filter(kind="certificate_pdf").exists())
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    assert not ActivityRecord.objects.filter(student=student).exists()  # the portal's part
    text = "".join(pdf_text(request.files.get(kind="certificate_pdf").content).split())
    for name in ("応募管理システム", "閲覧履歴基盤", *("".join(e.name.split()) for e in employers)):
        assert name in text


# Staff acting on a failed source -----------------------------------------------------------
def _staff(role):
    from django.contrib.auth.models import Group

    user = StaffFactory(is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_staff_call_a_failed_source_again_and_an_officer_closes_one(
    client, silent_source, django_capture_on_commit_callbacks
):
    from audit.models import AuditEntry
    from backoffice.roles import PRIVACY_OFFICER, SUPPORT

    student, _employers = student_with_recipients(("ja",))
    source = make_source(f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    assert task.status == SourceTask.Status.FAILED
    recall = reverse("admin:disclosure_datarequest_source_recall", args=[request.pk, task.pk])
    close = reverse("admin:disclosure_datarequest_source_close", args=[request.pk, task.pk])

    client.force_login(_staff(SUPPORT))
    page = client.get(reverse("admin:disclosure_datarequest_change", args=[request.pk]))
    html = page.content.decode()
    assert recall in html and close not in html  # Support may call again, not close
    form = client.get(recall)
    assert form.status_code == 200 and "ConnectionError" in form.content.decode()
    assert client.post(recall, {"reason": ""}).status_code == 200  # re-shown: a reason is needed
    DataSource.objects.filter(pk=source.pk).update(endpoint=silent_source.url)  # fixed
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(recall, {"reason": "the system is back"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == SourceTask.Status.CALLED and task.attempts == 1
    assert AuditEntry.objects.filter(name="disclosure.resend_answer_link").count() == 1
    assert client.post(close, {"reason": "retired"}).status_code == 403

    client.force_login(_staff(PRIVACY_OFFICER))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(close, {"reason": "the system was retired"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == SourceTask.Status.CLOSED
    assert request.events.filter(kind="closed", detail__contains="retired").exists()
    for company in request.tasks.all():
        recipient_task_answer(task=company, answered_by="担当 佐藤", answer="deleted")
    request.refresh_from_db()
    assert request.status == DataRequest.Status.PARTIALLY_COMPLETED
    # Finished: the links are gone and a stale POST changes nothing.
    page = client.get(reverse("admin:disclosure_datarequest_change", args=[request.pk]))
    assert close not in page.content.decode()
    assert client.post(close, {"reason": "again"}).status_code == 302
    assert AuditEntry.objects.filter(name="disclosure.close_task").count() == 1


def test_an_english_timeline_tells_a_site_systems_answer_in_english_and_credits_the_system(
    client, silent_source, django_capture_on_commit_callbacks
):
    """Issue 17, item 4: "By the portal. 閲覧履歴基盤 / Browsing history: 完了を確認"."""
    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url, name="閲覧履歴基盤 / Browsing history")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    with translation.override("ja"), django_capture_on_commit_callbacks(execute=True):
        assert callback(client, task, {"answer": "confirmed"}).status_code == 200
    client.force_login(student)
    client.cookies.load({"django_language": "en"})
    page = client.get(reverse("disclosure:request_detail", args=[request.reference]))
    html = page.content.decode()
    with translation.override("en"):
        confirmed = str(SourceTask.Answer("confirmed").label)
    assert (
        f"By the job site&#x27;s system. 閲覧履歴基盤 / Browsing history answered: {confirmed}"
        in html
    )
    assert "完了を確認" not in html


def test_a_call_left_unanswered_past_the_due_date_may_be_made_again(
    client, silent_source, django_capture_on_commit_callbacks
):
    """A worker killed between claiming a call and the source receiving it leaves the task
    "called" with no retry: once overdue, staff may call it again; before, they may not."""
    from backoffice.roles import SUPPORT

    student, _employers = student_with_recipients(("ja",))
    make_source(silent_source.url)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    task = SourceTask.objects.get(request=request)
    assert task.status == SourceTask.Status.CALLED and task.attempts == 1
    recall = reverse("admin:disclosure_datarequest_source_recall", args=[request.pk, task.pk])
    change = reverse("admin:disclosure_datarequest_change", args=[request.pk])
    client.force_login(_staff(SUPPORT))

    assert recall not in client.get(change).content.decode()  # still waiting: no button
    with pytest.raises(ValidationError):
        source_task_recall(task=task, by=StaffFactory(), reason="again")

    SourceTask.objects.filter(pk=task.pk).update(overdue=True)
    calls_before = len(silent_source.calls)
    assert recall in client.get(change).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(recall, {"reason": "no answer; the call may never have arrived"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == SourceTask.Status.CALLED and task.attempts == 1
    assert len(silent_source.calls) > calls_before  # the source was called again
