"""A deletion request erases the student's results with their activity records (in its scope),
and closing an account erases them too; what stays is the proof that the student objected and
that each company was told, without the results."""

import pytest
from django.urls import reverse

from disclosure.closing import account_close
from disclosure.models import DataRequest
from disclosure.services import request_file
from inferences.models import Inference, InferenceDispute, InferenceObjection, ObjectionNotice
from inferences.services import inference_dispute, inference_model_object
from inferences.services.erasure import ERASED_TEXT
from portal.models import ActivityRecord, EmailMessage

pytestmark = pytest.mark.django_db


def _activity(student, employer):
    return ActivityRecord.objects.create(student=student, employer=employer, kind="page_view")


def test_a_deletion_erases_every_result_and_dispute_with_the_activity_records(
    scored, django_capture_on_commit_callbacks
):
    student = scored.student
    _activity(student, scored.aoba)
    inference_dispute(student=student, inference=scored.results["r-2"], statement="違います")

    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="deletion")

    assert not Inference.objects.filter(student=student).exists()
    assert not InferenceDispute.objects.exists()
    assert not ActivityRecord.objects.filter(student=student).exists()
    request.refresh_from_db()
    assert request.portal_summary["inferences_deleted"] == 3
    assert "inferences deleted: 3" in request.events.get(kind="portal_done").detail


def test_the_student_reads_how_many_results_were_erased(
    client, scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=scored.student, kind="deletion")
    client.force_login(scored.student)
    client.cookies.load({"django_language": "en"})

    page = client.get(reverse("disclosure:request_detail", args=[request.reference]))

    assert "Erased 3 results the site inferred about you" in page.content.decode()


def test_a_deletion_for_one_company_erases_only_the_results_made_for_it(
    scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="deletion", employers=[scored.aoba])

    assert set(Inference.objects.values_list("source_id", flat=True)) == {"r-3"}


def test_the_objection_stays_and_its_notice_keeps_the_fact_without_the_results(
    scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inference_model_object(student=scored.student, model=scored.model)
    [notice] = ObjectionNotice.objects.all()
    email = EmailMessage.objects.get(pk=notice.email_id)
    assert email.status == EmailMessage.Status.SENT and "81" in email.body_text

    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="deletion")

    assert InferenceObjection.objects.filter(student=scored.student).exists()
    email.refresh_from_db()
    assert (email.body_text, email.body_html) == (ERASED_TEXT, "")
    assert email.to == "hr@aoba.example" and email.sent_at is not None  # who was told, when
    assert ObjectionNotice.objects.get().employer == scored.aoba


def test_a_deletion_for_another_company_leaves_the_notice_and_one_not_yet_sent_keeps_its_text(
    scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inference_model_object(student=scored.student, model=scored.model)
    [notice] = ObjectionNotice.objects.all()
    email = EmailMessage.objects.get(pk=notice.email_id)
    text = email.body_text

    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="deletion", employers=[scored.kaede])
    email.refresh_from_db()
    assert email.body_text == text  # its company is not in the request's scope

    EmailMessage.objects.filter(pk=email.pk).update(status=EmailMessage.Status.QUEUED)
    with django_capture_on_commit_callbacks(execute=False):  # the email waits to go
        request_file(student=scored.student, kind="deletion", employers=[scored.aoba])
    email.refresh_from_db()
    assert email.body_text == text  # still to be sent: what it says is still to be said

    EmailMessage.objects.filter(pk=email.pk).update(status=EmailMessage.Status.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="deletion")
    email.refresh_from_db()
    assert (email.body_text, email.body_html) == (ERASED_TEXT, "")


def test_closing_the_account_erases_the_results_without_a_deletion_request(
    scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        filed = account_close(student=scored.student, delete_at_companies=False, language="ja")

    assert filed is None
    assert not Inference.objects.filter(student=scored.student).exists()


def test_closing_with_a_deletion_request_records_the_results_erased_on_it(
    scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        filed = account_close(student=scored.student, delete_at_companies=True, language="ja")

    assert DataRequest.objects.get(pk=filed.pk).portal_summary["inferences_deleted"] == 3
    assert not Inference.objects.exists()
