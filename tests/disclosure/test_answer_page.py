"""The company answer page, /r/<token>/: what it shows, what it records, and when it refuses."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import formats, timezone, translation

from consent.services import consent_grant, provision_record
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestFile
from disclosure.services import request_cancel, request_file
from tests.factories import (
    EmployerFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")


@pytest.fixture
def filed(django_capture_on_commit_callbacks, mailoutbox):
    """File a request for a student whose data went to one or more companies; return the
    request, the student, the companies and each company's token (from its email)."""

    def file(kind="deletion", *, companies=1, language="ja", other_student=True):
        now = timezone.now()
        analysis, provision = opt_in_purposes()
        employers = [EmployerFactory(language=language) for _ in range(companies)]
        with time_machine.travel(now - timedelta(days=60), tick=True):
            student, version = student_who_accepted(
                analysis, provision, display_name="山田 花子", email="hanako@example.jp"
            )
            for employer in employers:
                consent_grant(student=student, employer=employer, purpose=provision)
            if other_student:
                other = UserFactory(display_name="佐藤 次郎", email="jiro@example.jp")
                accept(other, version)
                consent_grant(student=other, employer=employers[0], purpose=provision)
        for employer in employers:
            provision_record(
                student=student,
                employer=employer,
                purpose=provision,
                data_items="閲覧履歴スコア, 志望度",
                first_provided_at=now - timedelta(days=50),
                provided_at=now - timedelta(days=20),
            )
            provision_record(
                student=student,
                employer=employer,
                purpose=provision,
                data_items="氏名, メールアドレス",
                provided_at=now - timedelta(days=10),
            )
        if other_student:
            provision_record(
                student=other,
                employer=employers[0],
                purpose=provision,
                data_items="OTHER-STUDENT-ITEM",
                provided_at=now - timedelta(days=5),
            )
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            data_request = request_file(student=student, kind=kind)
        tokens = {}
        for employer in employers:
            mails = [m for m in mailoutbox if m.to == [employer.primary_contact.email]]
            assert len(mails) == 1
            tokens[employer.pk] = TOKEN.search(mails[0].body).group(1)
        return data_request, student, employers, tokens

    return file


def url(token: str) -> str:
    return reverse("disclosure:answer", args=[token])


def only_token(tokens: dict) -> str:
    (token,) = tokens.values()
    return token


def date_text(value, language="ja") -> str:
    with translation.override(language):
        return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def post(client, token, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url(token), data)


# --- what the page shows ------------------------------------------------------------------


def test_the_page_shows_what_the_company_needs_and_nothing_of_another_student(client, filed):
    data_request, student, (employer,), tokens = filed("deletion")
    response = client.get(url(only_token(tokens)))
    assert response.status_code == 200
    page = response.content.decode()
    assert data_request.reference in page
    assert "山田 花子" in page and "hanako@example.jp" in page
    assert "閲覧履歴スコア, 志望度" in page and "氏名, メールアドレス" in page
    now = timezone.now()
    # A bulk record shows its first and last date, a single one its date.
    assert date_text(now - timedelta(days=50)) in page
    assert date_text(now - timedelta(days=20)) in page
    assert date_text(now - timedelta(days=10)) in page
    assert "分析結果の企業への提供" in page  # the purpose
    for other in ("佐藤 次郎", "jiro@example.jp", "OTHER-STUDENT-ITEM"):
        assert other not in page
    # One form, the answer as radios none of which is chosen, and the attestation unticked.
    assert page.count('type="radio"') == 3
    assert " checked" not in page
    assert '<fieldset class="answer-choices"' in page and "<legend>" in page
    assert 'name="attestation"' in page
    assert "no-store" in response["Cache-Control"]  # personal data: never cached
    assert '<html lang="ja">' in page


def test_the_page_is_in_english_for_a_company_that_reads_english(client, filed):
    _request, _student, _employers, tokens = filed("deletion", language="en")
    response = client.get(url(only_token(tokens)))
    page = response.content.decode()
    assert response["Content-Language"] == "en"
    assert '<html lang="en">' in page
    assert "A student asks your company to delete their data" in page
    assert "We have deleted the data" in page
    # The company's language was the page's only: nothing else in this thread speaks it.
    assert translation.get_language() != "en"


def test_the_visitor_s_own_language_choice_wins(client, filed, settings):
    _request, _student, _employers, tokens = filed("deletion", language="en")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    page = client.get(url(only_token(tokens))).content.decode()
    assert '<html lang="ja">' in page


# --- answering a deletion -------------------------------------------------------------------


def test_a_deletion_answer_is_recorded_with_the_name_and_the_attestation(
    client, filed, django_capture_on_commit_callbacks, mailoutbox
):
    data_request, student, _employers, tokens = filed("deletion")
    token = only_token(tokens)
    mailoutbox.clear()
    response = post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="deleted",
        answered_by="人事部長 鈴木 一郎",
        attestation="on",
    )
    assert response.status_code == 302 and response["Location"] == url(token)
    task = RecipientTask.objects.get(request=data_request)
    assert task.status == "answered" and task.answer == "deleted"
    assert task.answered_by == "人事部長 鈴木 一郎"
    assert task.answered_via == "link"
    assert "hiring decision" in task.statement or "採用" in task.statement
    # The only company answered: the request is complete and the student is told.
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.COMPLETED
    assert any(m.to == [student.email] for m in mailoutbox)
    # Following the redirect: the recorded answer, with the thanks, and no form.
    page = client.get(url(token)).content.decode()
    assert "人事部長 鈴木 一郎" in page
    assert 'class="notice success"' in page
    assert 'type="radio"' not in page


def test_without_the_attestation_nothing_is_recorded_and_nothing_typed_is_lost(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("deletion")
    response = post(
        client,
        only_token(tokens),
        django_capture_on_commit_callbacks,
        answer="deleted",
        answered_by="鈴木 一郎",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error-summary"' in page
    assert 'href="#id_attestation"' in page
    assert 'aria-invalid="true"' in page and 'aria-describedby="id_attestation-error"' in page
    assert 'value="鈴木 一郎"' in page
    assert re.search(r'value="deleted" checked', page)
    task = RecipientTask.objects.get(request=data_request)
    assert task.status == "sent" and task.answer == "" and task.answered_at is None
    data_request.refresh_from_db()
    assert data_request.is_open


def test_no_choice_and_no_name_are_errors_linked_to_their_fields(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("deletion")
    response = post(client, only_token(tokens), django_capture_on_commit_callbacks)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'href="#id_answer_0"' in page and 'href="#id_answered_by"' in page
    # The summary lists the errors in the order of the page.
    assert page.index('href="#id_answer_0"') < page.index('href="#id_answered_by"')
    assert not RecipientTask.objects.filter(request=data_request, status="answered").exists()


def test_a_refusal_needs_a_reason(client, filed, django_capture_on_commit_callbacks):
    data_request, _student, _employers, tokens = filed("deletion")
    token = only_token(tokens)
    response = post(
        client, token, django_capture_on_commit_callbacks, answer="refused", answered_by="鈴木"
    )
    assert response.status_code == 200
    assert 'href="#id_reason"' in response.content.decode()
    assert RecipientTask.objects.get(request=data_request).answered_at is None

    response = post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="refused",
        answered_by="鈴木",
        reason="採用選考の記録として法令上の保存義務があります。",
    )
    assert response.status_code == 302
    task = RecipientTask.objects.get(request=data_request)
    assert task.answer == "refused"
    assert task.statement == "採用選考の記録として法令上の保存義務があります。"
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.PARTIALLY_COMPLETED


def test_held_none_needs_only_the_name(client, filed, django_capture_on_commit_callbacks):
    data_request, _student, _employers, tokens = filed("deletion")
    response = post(
        client,
        only_token(tokens),
        django_capture_on_commit_callbacks,
        answer="held_none",
        answered_by="鈴木",
    )
    assert response.status_code == 302
    assert RecipientTask.objects.get(request=data_request).answer == "held_none"


def test_a_cessation_is_answered_with_stopped_and_its_own_attestation(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("cessation")
    token = only_token(tokens)
    page = client.get(url(token)).content.decode()
    assert 'value="stopped"' in page and 'value="deleted"' not in page
    # The answer of another kind is not taken.
    response = post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="deleted",
        answered_by="鈴木",
        attestation="on",
    )
    assert response.status_code == 200
    assert RecipientTask.objects.get(request=data_request).answered_at is None
    response = post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="stopped",
        answered_by="鈴木",
        attestation="on",
    )
    assert response.status_code == 302
    assert RecipientTask.objects.get(request=data_request).answer == "stopped"


def test_the_answer_completes_the_request_only_when_it_was_the_last_company(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, (first, second), tokens = filed("deletion", companies=2)
    answer = {"answer": "deleted", "answered_by": "鈴木", "attestation": "on"}
    post(client, tokens[first.pk], django_capture_on_commit_callbacks, **answer)
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.IN_PROGRESS
    post(client, tokens[second.pk], django_capture_on_commit_callbacks, **answer)
    data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.COMPLETED


# --- disclosure, with a file ----------------------------------------------------------------


def test_a_disclosure_is_recorded_with_its_file(client, filed, django_capture_on_commit_callbacks):
    data_request, _student, _employers, tokens = filed("disclosure")
    token = only_token(tokens)
    page = client.get(url(token)).content.decode()
    assert 'enctype="multipart/form-data"' in page and 'value="disclosed"' in page
    pdf = b"%PDF-1.4\n% test file\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(token),
            {
                "answer": "disclosed",
                "answered_by": "鈴木",
                "held_data": "適性スコア: 82\n面接評価: B",
                "upload": SimpleUploadedFile("候補者データ.pdf", pdf, "application/pdf"),
            },
        )
    assert response.status_code == 302
    task = RecipientTask.objects.get(request=data_request)
    assert task.answer == "disclosed" and task.statement == "適性スコア: 82\n面接評価: B"
    stored = RequestFile.objects.get(task=task, kind=RequestFile.Kind.COMPANY_FILE)
    assert bytes(stored.content) == pdf and stored.size == len(pdf)
    assert stored.name == "候補者データ.pdf" and stored.content_type == "application/pdf"
    assert stored.sha256 == hashlib.sha256(pdf).hexdigest()
    page = client.get(url(token)).content.decode()
    assert "候補者データ.pdf" in page and stored.sha256 in page


@pytest.mark.parametrize(
    ("name", "content", "content_type", "message"),
    [
        ("data.exe", b"MZ\x90\x00", "application/x-msdownload", "cannot be accepted"),
        ("fake.pdf", b"MZ\x90\x00 not a pdf", "application/pdf", "does not match"),
        ("data.zip", b"%PDF-1.4", "application/zip", "does not match"),
        ("data.csv", b"\x82\xa0\x82\xa2,\x82\xa4", "text/csv", "does not match"),
    ],
)
def test_a_file_of_a_wrong_type_is_refused_with_a_message(
    client, filed, django_capture_on_commit_callbacks, name, content, content_type, message
):
    data_request, _student, _employers, tokens = filed(
        "disclosure", other_student=False, language="en"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(only_token(tokens)),
            {
                "answer": "disclosed",
                "answered_by": "鈴木",
                "held_data": "適性スコア: 82",
                "upload": SimpleUploadedFile(name, content, content_type),
            },
        )
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page and 'href="#id_upload"' in page
    assert "適性スコア: 82" in page  # the text is kept
    assert RecipientTask.objects.get(request=data_request).answered_at is None
    assert not RequestFile.objects.filter(kind=RequestFile.Kind.COMPANY_FILE).exists()


def test_an_oversized_file_is_refused(client, filed, django_capture_on_commit_callbacks, settings):
    settings.COMPANY_FILE_MAX_BYTES = 1000
    data_request, _student, _employers, tokens = filed(
        "disclosure", other_student=False, language="en"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(only_token(tokens)),
            {
                "answer": "disclosed",
                "answered_by": "鈴木",
                "held_data": "添付のとおり",
                "upload": SimpleUploadedFile("data.txt", b"a" * 1001, "text/plain"),
            },
        )
    assert response.status_code == 200
    assert "too large" in response.content.decode()
    assert RecipientTask.objects.get(request=data_request).answered_at is None


def test_a_csv_sent_by_windows_as_excel_is_taken_as_csv(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("disclosure", other_student=False)
    csv = "項目,値\n適性スコア,82\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(only_token(tokens)),
            {
                "answer": "disclosed",
                "answered_by": "鈴木",
                "held_data": "添付のとおり",
                "upload": SimpleUploadedFile("data.csv", csv, "application/vnd.ms-excel"),
            },
        )
    assert response.status_code == 302
    assert RequestFile.objects.get(task__request=data_request).content_type == "text/csv"


def test_held_none_on_a_disclosure_keeps_no_file(client, filed, django_capture_on_commit_callbacks):
    data_request, _student, _employers, tokens = filed("disclosure", other_student=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url(only_token(tokens)),
            {
                "answer": "held_none",
                "answered_by": "鈴木",
                "upload": SimpleUploadedFile("x.exe", b"MZ", "application/x-msdownload"),
            },
        )
    assert response.status_code == 302
    assert RecipientTask.objects.get(request=data_request).answer == "held_none"
    assert not RequestFile.objects.filter(kind=RequestFile.Kind.COMPANY_FILE).exists()


# --- used, expired, revoked, unknown, cancelled ---------------------------------------------


def test_a_used_link_shows_the_answer_and_refuses_a_second_one(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("deletion")
    token = only_token(tokens)
    post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="deleted",
        answered_by="鈴木 一郎",
        attestation="on",
    )
    before = RecipientTask.objects.get(request=data_request)
    response = client.get(url(token))
    assert response.status_code == 200
    page = response.content.decode()
    assert "鈴木 一郎" in page and 'type="radio"' not in page
    assert formats.date_format(timezone.localtime(before.answered_at), "DATETIME_FORMAT") in page
    response = post(
        client,
        token,
        django_capture_on_commit_callbacks,
        answer="refused",
        answered_by="別の人",
        reason="やはり削除できません",
    )
    assert response.status_code == 409
    assert "鈴木 一郎" in response.content.decode()
    after = RecipientTask.objects.get(request=data_request)
    assert (after.answer, after.answered_by, after.answered_at, after.statement) == (
        before.answer,
        before.answered_by,
        before.answered_at,
        before.statement,
    )


def test_an_answered_task_shows_its_answer_through_an_expired_link_too(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("deletion")
    token = only_token(tokens)
    post(client, token, django_capture_on_commit_callbacks, answer="held_none", answered_by="鈴木")
    AnswerLink.objects.update(expires_at=timezone.now() - timedelta(days=1))
    response = client.get(url(token))
    assert response.status_code == 200 and "鈴木" in response.content.decode()


def test_an_expired_link_says_how_to_get_a_new_one(client, filed, settings):
    data_request, _student, _employers, tokens = filed("deletion", language="en")
    AnswerLink.objects.filter(task__request=data_request).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(url(only_token(tokens)))
    assert response.status_code == 410
    page = response.content.decode()
    assert settings.SUPPORT_EMAIL in page and data_request.reference in page
    assert "expired" in page
    for private in ("山田 花子", "hanako@example.jp", "閲覧履歴スコア"):
        assert private not in page
    assert 'type="radio"' not in page


def test_an_expired_link_takes_no_answer(client, filed, django_capture_on_commit_callbacks):
    data_request, _student, _employers, tokens = filed("deletion")
    AnswerLink.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = post(
        client,
        only_token(tokens),
        django_capture_on_commit_callbacks,
        answer="held_none",
        answered_by="鈴木",
    )
    assert response.status_code == 410
    assert RecipientTask.objects.get(request=data_request).answered_at is None


def test_a_revoked_link_is_gone(client, filed, settings):
    data_request, _student, _employers, tokens = filed("deletion")
    AnswerLink.objects.update(revoked_at=timezone.now())
    response = client.get(url(only_token(tokens)))
    assert response.status_code == 410
    page = response.content.decode()
    assert settings.SUPPORT_EMAIL in page and data_request.reference in page
    assert "山田 花子" not in page


def test_an_unknown_token_is_the_plain_404(client, filed):
    filed("deletion")
    response = client.get(url("x" * 43))
    assert response.status_code == 404
    # The same page as for any address that does not exist: nothing about tokens or links.
    assert response.content == client.get("/no-such-page/").content
    assert client.post(url("nope")).status_code == 404


def test_a_cancelled_request_says_so_without_a_form(
    client, filed, django_capture_on_commit_callbacks
):
    data_request, _student, _employers, tokens = filed("deletion", language="en")
    request_cancel(request=data_request, reason="学生が取り下げました")
    response = client.get(url(only_token(tokens)))
    page = response.content.decode()
    assert response.status_code == 200
    assert "cancelled" in page and data_request.reference in page
    assert 'type="radio"' not in page and "山田 花子" not in page
    response = post(
        client,
        only_token(tokens),
        django_capture_on_commit_callbacks,
        answer="held_none",
        answered_by="鈴木",
    )
    assert RecipientTask.objects.get(request=data_request).answered_at is None


def test_the_post_needs_the_csrf_token(filed):
    from django.test import Client

    _request, _student, _employers, tokens = filed("deletion")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(url(only_token(tokens)), {"answer": "held_none", "answered_by": "x"})
    assert response.status_code == 403
    assert not RecipientTask.objects.filter(status="answered").exists()


# --- rate limit -----------------------------------------------------------------------------


def test_every_hit_counts_towards_the_rate_limit(client, filed, settings):
    _request, _student, _employers, tokens = filed("deletion")
    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 3
    start = datetime.now(tz=UTC).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        assert client.get(url("guess-1")).status_code == 404
        assert client.get(url("guess-2")).status_code == 404
        assert client.get(url(only_token(tokens))).status_code == 200
        response = client.get(url(only_token(tokens)))
        assert response.status_code == 429
        assert int(response["Retry-After"]) == 59
        assert "disclosure/answer_rate_limited.html" in [t.name for t in response.templates]
        assert client.get(url("guess-3")).status_code == 429
        # Another address has its own count.
        assert client.get(url("guess-4"), REMOTE_ADDR="192.0.2.7").status_code == 404
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        assert client.get(url(only_token(tokens))).status_code == 200
