"""When staff answer a dispute, the student is emailed the answer (through the outbox, in their
language, once), with a link to the result on their page."""

import pytest
from django.urls import reverse

from inferences.services import DisputeRefused, inference_dispute, inference_dispute_answer
from portal.models import EmailMessage
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispute(scored):
    return inference_dispute(
        student=scored.student, inference=scored.results["r-1"], statement="第一志望です"
    )


def test_the_answer_is_emailed_to_the_student_in_japanese(
    scored, dispute, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        inference_dispute_answer(
            dispute=dispute, by=StaffFactory(), outcome="upheld", answer="集計に誤りがありました。"
        )

    [message] = mailoutbox
    assert message.to == [scored.student.email]
    assert "異議" in message.subject
    assert "集計に誤りがありました。" in message.body
    assert "内定辞退率の予測" in message.body and "81" in message.body
    assert f"/inferences/#result-{dispute.inference_id}" in message.body
    stored = EmailMessage.objects.get(kind=f"inference_dispute_answered:{dispute.pk}")
    assert stored.status == EmailMessage.Status.SENT and stored.language == "ja"


def test_an_english_reader_reads_it_in_english(
    scored, dispute, mailoutbox, django_capture_on_commit_callbacks
):
    scored.student.language = "en"
    scored.student.save(update_fields=["language"])

    with django_capture_on_commit_callbacks(execute=True):
        inference_dispute_answer(
            dispute=dispute, by=StaffFactory(), outcome="not_upheld", answer="It stands."
        )

    [message] = mailoutbox
    assert message.subject == "Your dispute of a result was answered"
    assert "Not upheld: the result stands." in message.body
    assert "Decline likelihood" in message.body and "Aoba KK" in message.body


def test_a_second_answer_is_refused_and_emails_nobody(
    dispute, mailoutbox, django_capture_on_commit_callbacks
):
    staff = StaffFactory()
    with django_capture_on_commit_callbacks(execute=True):
        inference_dispute_answer(dispute=dispute, by=staff, outcome="upheld", answer="誤り")
    with pytest.raises(DisputeRefused), django_capture_on_commit_callbacks(execute=True):
        inference_dispute_answer(dispute=dispute, by=staff, outcome="not_upheld", answer="正しい")

    assert len(mailoutbox) == 1
    assert EmailMessage.objects.filter(kind__startswith="inference_dispute_answered").count() == 1


def test_staff_answering_in_the_admin_emails_the_student(
    client, scored, dispute, mailoutbox, django_capture_on_commit_callbacks
):
    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    answer_url = reverse("admin:inferences_inferencedispute_answer", args=[dispute.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(answer_url, {"outcome": "upheld", "answer": "誤りでした"})

    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [[scored.student.email]]
