"""Correction requests (APPI Art. 34; GDPR Art. 16 and 19): filed for each kind of data, the
portal's own part done at once (corrected or marked disputed), passed to exactly the
companies that received that data, answered through the link with one of three answers,
and certified; an inference's dispute filed as a correction scoped to it."""

import io
import json
import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation
from pypdf import PdfReader

from backoffice.roles import SUPPORT
from consent.api.keys import api_key_create
from consent.models import PolicyVersion, Purpose
from consent.services import consent_grant, provision_record
from disclosure import api as disclosure_api
from disclosure.closing import account_close
from disclosure.forms import answer_form_class
from disclosure.models import (
    Correction,
    DataRequest,
    RecipientTask,
    RequestFile,
    WorkspaceLink,
)
from disclosure.services import (
    AnswerRefused,
    RequestRefused,
    recipient_task_answer,
    request_file,
    requests_sweep,
    workspace_answer_bulk,
)
from disclosure.services.corrections import CorrectionAsked, correction_file
from inferences.models import InferenceDispute
from portal.models import ActivityRecord
from tests.factories import (
    PASSWORD,
    ActivityRecordFactory,
    EmployerFactory,
    InferenceFactory,
    StaffFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")
Target = Correction.Target


@pytest.fixture
def world():
    """A student whose data went to Aoba 10 days ago and to Kaede 30 days ago, and whom
    Momiji holds a grant of, with nothing received; one activity record of 20 days ago;
    a result handed to Aoba and one made for Kaede but not handed over."""
    now = timezone.now()
    analysis, provision = opt_in_purposes()
    aoba = EmployerFactory(name="株式会社青葉", name_en="Aoba KK")
    kaede = EmployerFactory(name="株式会社かえで", name_en="Kaede KK")
    momiji = EmployerFactory(name="株式会社もみじ", name_en="Momiji KK")
    with time_machine.travel(now - timedelta(days=60), tick=True):
        student, _version = student_who_accepted(analysis, provision, display_name="山田 花")
        for employer in (aoba, kaede, momiji):
            consent_grant(student=student, employer=employer, purpose=provision)
    for employer, days in ((aoba, 10), (kaede, 30)):
        provision_record(
            student=student,
            employer=employer,
            purpose=provision,
            data_items="氏名, 閲覧履歴スコア",
            provided_at=now - timedelta(days=days),
        )
    record = ActivityRecordFactory(
        student=student, employer=aoba, occurred_at=now - timedelta(days=20), detail="/jobs/9"
    )
    handed = InferenceFactory(student=student, employer=aoba, output_number=81.0)
    kept = InferenceFactory(student=student, employer=kaede, handed_over_at=None)
    return SimpleNamespace(
        student=student,
        aoba=aoba,
        kaede=kaede,
        momiji=momiji,
        record=record,
        handed=handed,
        kept=kept,
        now=now,
    )


def _file(student, captured, **asked):
    employers = asked.pop("employers", None)
    with captured(execute=True):
        return correction_file(
            student=student, asked=CorrectionAsked(**asked), employers=employers, language="ja"
        )


def _companies(request: DataRequest) -> set[str]:
    return set(request.tasks.values_list("employer__name_en", flat=True))


# --- filing, each target -----------------------------------------------------------------


def test_a_name_is_corrected_at_once_and_passed_to_every_company_that_received_it(
    world, django_capture_on_commit_callbacks, mailoutbox
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.PROFILE,
        profile_field="display_name",
        wrong="名前の漢字が違います",
        right="山田 花子",
    )

    world.student.refresh_from_db()
    assert world.student.display_name == "山田 花子"
    correction = filed.correction
    assert (correction.outcome, correction.previous_value) == ("corrected", "山田 花")
    assert filed.kind == "correction" and filed.portal_done_at is not None
    # The deletion's rule: received the data, or holds a live grant.
    assert _companies(filed) == {"Aoba KK", "Kaede KK", "Momiji KK"}
    assert filed.tasks.filter(status=RecipientTask.Status.SENT).count() == 3
    assert not filed.source_tasks.exists()
    company_mails = [m for m in mailoutbox if TOKEN.search(m.body)]
    assert len(company_mails) == 3
    assert "訂正" in company_mails[0].body  # the correction's own sentence


def test_an_activity_record_is_marked_disputed_and_goes_to_those_given_data_since(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.ACTIVITY,
        activity=world.record,
        wrong="この求人は見ていません",
        right="閲覧していない",
    )

    correction = filed.correction
    assert (correction.outcome, correction.activity) == ("disputed", world.record)
    assert "/jobs/9" in correction.target_label
    assert ActivityRecord.objects.filter(pk=world.record.pk).exists()  # kept, marked
    # Aoba was given the student's data after the record was made; Kaede before; Momiji never.
    assert _companies(filed) == {"Aoba KK"}
    assert filed.portal_done_at is not None


def test_a_handed_over_inference_is_disputed_and_goes_to_the_company_it_was_made_for(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.INFERENCE,
        inference=world.handed,
        wrong="辞退するつもりはありません",
        right="第一志望です",
    )

    dispute = InferenceDispute.objects.get()
    assert (dispute.inference, dispute.is_open) == (world.handed, True)
    assert filed.correction.dispute == dispute
    assert "第一志望です" in dispute.statement
    assert _companies(filed) == {"Aoba KK"}
    assert filed.portal_done_at is None  # done when staff answer the dispute


def test_an_inference_never_handed_over_goes_to_no_company_and_completes_on_staffs_answer(
    world, django_capture_on_commit_callbacks, client
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.INFERENCE,
        inference=world.kept,
        wrong="違います",
    )
    assert not filed.tasks.exists()
    assert filed.is_open

    staff = StaffFactory(is_superuser=False)
    staff.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(staff)
    dispute = filed.correction.dispute
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:inferences_inferencedispute_answer", args=[dispute.pk]),
            {"outcome": "not_upheld", "answer": "集計は正しく行われていました。"},
        )
    assert response.status_code == 302

    filed.refresh_from_db()
    assert filed.status == "completed"
    assert filed.portal_summary == {"correction": "disputed", "dispute": "not_upheld"}
    assert filed.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists()
    assert filed.events.filter(kind="portal_done", actor="staff").exists()


def test_data_a_company_holds_goes_to_the_companies_the_student_chose(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.COMPANY,
        wrong="面接の評価記録に別人の情報が混ざっています",
        employers=[world.kaede],
    )

    assert filed.correction.outcome == "passed_on"
    assert _companies(filed) == {"Kaede KK"}
    assert not filed.all_recipients


@pytest.mark.parametrize(
    "asked, code",
    [
        ({"target": "profile", "profile_field": "display_name", "wrong": "x"}, "right"),
        (
            {"target": "profile", "profile_field": "email", "wrong": "x", "right": "y"},
            "profile_field",
        ),
        ({"target": "activity", "wrong": "x"}, "activity"),
        ({"target": "company", "wrong": "   "}, "wrong"),
    ],
    ids=["name-without-right", "email-not-a-field", "no-record", "no-words"],
)
def test_a_correction_missing_what_it_needs_is_refused(world, asked, code):
    with pytest.raises(RequestRefused) as refused:
        correction_file(student=world.student, asked=CorrectionAsked(**asked))
    assert refused.value.code == code
    assert not DataRequest.objects.exists()


def test_another_students_record_or_result_cannot_be_corrected(world):
    other = UserFactory()
    theirs = ActivityRecordFactory(student=other)
    with pytest.raises(RequestRefused):
        correction_file(
            student=world.student,
            asked=CorrectionAsked(target="activity", activity=theirs, wrong="x"),
        )
    with pytest.raises(RequestRefused):
        correction_file(
            student=world.student,
            asked=CorrectionAsked(
                target="inference", inference=InferenceFactory(student=other), wrong="x"
            ),
        )
    assert not DataRequest.objects.exists()


def test_two_corrections_may_be_open_at_once_but_a_result_is_disputed_once(
    world, django_capture_on_commit_callbacks
):
    _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="a")
    _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="b")
    _file(
        world.student,
        django_capture_on_commit_callbacks,
        target="inference",
        inference=world.handed,
        wrong="c",
    )
    with pytest.raises(RequestRefused) as refused:
        _file(
            world.student,
            django_capture_on_commit_callbacks,
            target="inference",
            inference=world.handed,
            wrong="d",
        )
    assert refused.value.code == "open"
    assert DataRequest.objects.filter(kind="correction").count() == 3


# --- the company's answer --------------------------------------------------------------


def test_the_company_answer_form_offers_only_the_three_answers_of_a_correction():
    form = answer_form_class("correction")()
    assert [value for value, _label in form.fields["answer"].choices] == [
        "corrected",
        "held_none",
        "refused",
    ]


@pytest.mark.parametrize(
    "answer, extra, shown",
    [
        ("corrected", {}, "Corrected"),
        ("held_none", {}, "held none"),
        ("refused", {"reason": "The score is correct as recorded."}, "correct as recorded"),
    ],
    ids=["corrected", "held_none", "refused"],
)
def test_a_company_answers_through_its_link_and_the_student_sees_it(
    world, django_capture_on_commit_callbacks, mailoutbox, client, settings, answer, extra, shown
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.ACTIVITY,
        activity=world.record,
        wrong="見ていません",
        right="閲覧なし",
    )
    [mail] = [m for m in mailoutbox if TOKEN.search(m.body)]
    url = reverse("disclosure:answer", args=[TOKEN.search(mail.body).group(1)])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(url).content.decode()
    assert "A student asks your company to correct their data" in page
    assert "見ていません" in page and "閲覧なし" in page  # what is wrong, what is right
    assert 'value="deleted"' not in page and 'value="corrected"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"answer": answer, "answered_by": "佐藤 人事部長", **extra})
    assert response.status_code == 302

    task = filed.tasks.get()
    assert (task.status, task.answer) == ("answered", answer)
    filed.refresh_from_db()
    assert filed.status == ("partially_completed" if answer == "refused" else "completed")
    assert filed.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists()
    client.force_login(world.student)
    page = client.get(reverse("disclosure:request_detail", args=[filed.reference]))
    assert shown.lower() in page.content.decode().lower()


def test_refusing_a_correction_needs_a_reason(world, django_capture_on_commit_callbacks):
    filed = _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="x")
    task = filed.tasks.first()
    with translation.override("en"):  # the refusals' words, read here in English
        with pytest.raises(AnswerRefused, match="why"):
            recipient_task_answer(task=task, answer="refused", answered_by="佐藤")
        with pytest.raises(AnswerRefused, match="fit"):
            recipient_task_answer(task=task, answer="deleted", answered_by="佐藤")
    task.refresh_from_db()
    assert task.answered_at is None


def test_corrected_is_a_bulk_answer_for_corrections_only(world, django_capture_on_commit_callbacks):
    correction = _file(
        world.student, django_capture_on_commit_callbacks, target="company", wrong="x"
    )
    _analysis, provision = Purpose.objects.filter(requires_opt_in=True).order_by("pk")
    other = UserFactory()
    accept(other, PolicyVersion.objects.get())
    consent_grant(student=other, employer=world.aoba, purpose=provision)
    with django_capture_on_commit_callbacks(execute=True):
        deletion = request_file(student=other, kind="deletion")
    corrected, deleted = correction.tasks.get(employer=world.aoba), deletion.tasks.get()
    link = WorkspaceLink.objects.create(
        employer=world.aoba,
        email="privacy@aoba.example",
        token_sha256="0" * 64,
        expires_at=timezone.now() + timedelta(days=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = workspace_answer_bulk(
            link=link,
            task_ids=[corrected.pk, deleted.pk],
            answer="corrected",
            name="佐藤",
            role="人事部長",
            attested=False,
        )
    assert [t.pk for t in result.answered] == [corrected.pk]
    assert [reference for reference, _why in result.skipped] == [deletion.reference]
    corrected.refresh_from_db()
    deleted.refresh_from_db()
    assert (corrected.answer, deleted.answer) == ("corrected", "")


# --- the student's pages -------------------------------------------------------------------


def _reauthenticated(client, student):
    client.force_login(student)
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302


def test_the_student_files_a_correction_on_the_form(
    world, client, settings, django_capture_on_commit_callbacks
):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    _reauthenticated(client, world.student)
    url = reverse("disclosure:request_correction")
    assert client.get(reverse("disclosure:request_new"), {"kind": "correction"})["Location"] == url

    missing = client.post(url, {"target": "activity", "wrong": "not me"})
    assert missing.status_code == 200
    assert "Choose the activity record that is wrong." in missing.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "target": "activity",
                "activity": str(world.record.pk),
                "wrong": "I never viewed this job.",
                "right": "No view.",
                "scope": "all",
            },
        )
    filed = DataRequest.objects.get(kind="correction")
    assert response["Location"] == reverse("disclosure:request_detail", args=[filed.reference])
    page = client.get(response["Location"]).content.decode()
    assert "I never viewed this job." in page and "Marked the activity record" in page


def test_the_correction_pages_run_a_fixed_number_of_queries(
    world, client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    ActivityRecordFactory.create_batch(30, student=world.student, employer=world.aoba)
    filed = _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="x")
    _reauthenticated(client, world.student)
    with django_assert_max_num_queries(7):
        assert client.get(reverse("disclosure:request_correction")).status_code == 200
    with django_assert_max_num_queries(8):
        page = client.get(reverse("disclosure:request_detail", args=[filed.reference]))
    assert page.status_code == 200


def test_the_answer_page_of_a_correction_runs_a_fixed_number_of_queries(
    world, client, django_capture_on_commit_callbacks, mailoutbox, django_assert_max_num_queries
):
    _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="x")
    token = TOKEN.search(mailoutbox[-1].body).group(1)
    with django_assert_max_num_queries(5):
        assert client.get(reverse("disclosure:answer", args=[token])).status_code == 200


# --- the inference's dispute -------------------------------------------------------------


def test_the_dispute_form_files_a_correction_scoped_to_the_result(
    world, client, django_capture_on_commit_callbacks
):
    client.force_login(world.student)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("disclosure:inference_dispute", args=[world.handed.pk]),
            {"statement": "辞退するつもりはありません。"},
        )
    assert response.status_code == 302
    filed = DataRequest.objects.get()
    assert (filed.kind, filed.correction.target) == ("correction", "inference")
    assert filed.correction.inference == world.handed
    assert _companies(filed) == {"Aoba KK"}
    assert InferenceDispute.objects.get().correction == filed.correction
    page = client.get(reverse("inferences:list")).content.decode()
    assert "異議あり" in page


def test_staff_upholding_the_dispute_withdraws_the_result_and_ends_the_portals_part(
    world, client, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target="inference",
        inference=world.handed,
        wrong="違います",
    )
    staff = StaffFactory(is_superuser=False)
    staff.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(staff)
    dispute = filed.correction.dispute
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:inferences_inferencedispute_answer", args=[dispute.pk]),
            {"outcome": "upheld", "answer": "集計に誤りがありました。"},
        )
    filed.refresh_from_db()
    assert filed.portal_summary["dispute"] == "upheld"
    assert filed.is_open  # Aoba has not answered yet
    client.force_login(world.student)
    page = client.get(reverse("inferences:list")).content.decode()
    assert "取り下げ" in page  # withdrawn
    detail = client.get(reverse("disclosure:request_detail", args=[filed.reference]))
    assert "集計に誤りがありました。" in detail.content.decode()


def test_the_admin_lists_requests_by_kind(world, client, django_capture_on_commit_callbacks):
    _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="x")
    client.force_login(StaffFactory())
    listing = client.get(reverse("admin:disclosure_datarequest_changelist"), {"kind": "correction"})
    assert listing.context["cl"].result_count == 1
    request = DataRequest.objects.get()
    page = client.get(reverse("admin:disclosure_datarequest_change", args=[request.pk]))
    assert "x" in page.content.decode()


# --- the company's API -----------------------------------------------------------------------


def test_the_companys_api_lists_what_to_correct_and_takes_only_the_three_answers(
    world, client, django_capture_on_commit_callbacks, monkeypatch, settings
):
    monkeypatch.setattr(disclosure_api, "REQUESTS_SETTLE", timedelta(0))
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    _client, key = api_key_create(
        name="青葉 HR", employer=world.aoba, scopes=["requests:read", "requests:answer"]
    )
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.ACTIVITY,
        activity=world.record,
        wrong="見ていません",
        right="閲覧なし",
    )
    headers = {"Authorization": f"Bearer {key}"}
    [item] = client.get("/api/v1/requests", headers=headers).json()["requests"]
    assert item["kind"] == "correction"
    assert item["correction"] == {
        "target": "activity",
        "data": filed.correction.target_label,
        "wrong": "見ていません",
        "right": "閲覧なし",
        "portal": "disputed",
    }

    def post(body):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/api/v1/requests/{filed.reference}/answer",
                data=json.dumps(body),
                content_type="application/json",
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )

    deleted = post({"answer": "deleted", "answered_by": "佐藤", "attestation": True})
    assert deleted.status_code == 422
    corrected = post({"answer": "corrected", "answered_by": "佐藤 花子, 人事部長"})
    assert corrected.status_code == 200, corrected.content
    assert filed.tasks.get().answer == "corrected"


# --- what happens to the data corrected later ------------------------------------------------


def test_a_record_erased_later_leaves_the_correction_saying_what_it_was(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.ACTIVITY,
        activity=world.record,
        wrong="見ていません",
    )
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=world.student, kind="deletion")

    correction = Correction.objects.get(request=filed)
    assert correction.activity is None
    assert "/jobs/9" in correction.target_label


def test_closing_the_account_erases_the_name_kept_by_its_correction(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.PROFILE,
        profile_field="display_name",
        wrong="漢字が違います",
        right="山田 花子",
    )
    with django_capture_on_commit_callbacks(execute=True):
        account_close(student=world.student, delete_at_companies=False, language="ja")

    correction = Correction.objects.get(request=filed)
    assert (correction.previous_value, correction.right) == ("", "")
    assert correction.wrong == "漢字が違います"  # the student's words about it stay


def test_the_certificate_says_what_was_corrected_and_each_answer(
    world, django_capture_on_commit_callbacks
):
    filed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target=Target.PROFILE,
        profile_field="display_name",
        wrong="漢字が違います",
        right="山田 花子",
        employers=[world.aoba],
    )
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(task=filed.tasks.get(), answer="corrected", answered_by="佐藤 部長")

    certificate = filed.files.get(kind=RequestFile.Kind.CERTIFICATE_PDF)
    text = "".join(
        "".join(page.extract_text().split())
        for page in PdfReader(io.BytesIO(bytes(certificate.content))).pages
    )
    for said in ("訂正の対象", "漢字が違います", "山田花子", "データを訂正した", "佐藤部長"):
        assert said in text, said
    assert "請求の受付時に、ポータルの記録を訂正しました。" in text


def test_cannot_correct_without_a_reason_is_refused_on_the_link(
    world, django_capture_on_commit_callbacks, mailoutbox, client, settings
):
    filed = _file(world.student, django_capture_on_commit_callbacks, target="company", wrong="x")
    mail = next(m for m in mailoutbox if TOKEN.search(m.body))  # one of the companies'
    url = reverse("disclosure:answer", args=[TOKEN.search(mail.body).group(1)])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.post(url, {"answer": "refused", "answered_by": "佐藤", "reason": "  "})

    assert response.status_code == 200
    assert "Say why you cannot comply." in response.content.decode()
    assert not filed.tasks.filter(answered_at__isnull=False).exists()


def test_a_result_erased_before_staff_answered_ends_its_corrections_own_part(
    world, django_capture_on_commit_callbacks
):
    """However a result goes (a deletion, closing the account, retention), its dispute goes
    with it; the sweep finds the correction with nothing left to answer."""
    handed = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target="inference",
        inference=world.handed,
        wrong="違います",
    )
    kept = _file(
        world.student,
        django_capture_on_commit_callbacks,
        target="inference",
        inference=world.kept,
        wrong="違います",
    )
    world.handed.delete()  # as the erasure does: the result, and its dispute with it
    world.kept.delete()

    with django_capture_on_commit_callbacks(execute=True):
        swept = requests_sweep()
        again = requests_sweep()

    assert sorted(swept["corrections_erased"]) == sorted([handed.pk, kept.pk])
    assert again["corrections_erased"] == []
    handed.refresh_from_db()
    kept.refresh_from_db()
    assert handed.portal_summary["dispute"] == "erased" and handed.is_open  # Aoba to answer
    assert kept.status == "completed"  # no company was asked
    assert kept.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists()
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(task=handed.tasks.get(), answer="held_none", answered_by="佐藤")
    handed.refresh_from_db()
    assert handed.status == "completed"
