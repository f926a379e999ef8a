"""A company's workspace as CSV (issue 19): the download (only the company's tasks, safe
cells, the BOM, a fixed number of queries) and a filled-in file read back (a preview that
changes nothing, a confirmation that answers the good rows once, the same file again
changing nothing, Shift_JIS, files refused)."""

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from disclosure.models import DataRequest, RecipientTask, WorkspaceEvent
from disclosure.services import workspace_csv
from disclosure.services.workspace_csv import CSV_MAX_BYTES
from disclosure.views.workspace import CSV_SESSION_KEY
from tests.disclosure import test_workspace
from tests.factories import EmployerFactory, UserFactory
from tests.security.test_downloads import assert_safe_download, body

pytestmark = pytest.mark.django_db

# The workspace's own fixtures: a link asked for, and a browser signed in with it.
ask = test_workspace.ask
signed_in = test_workspace.signed_in
make_task = test_workspace.make_task

LIST = reverse("disclosure:workspace")
DOWNLOAD = reverse("disclosure:workspace_csv")
UPLOAD = reverse("disclosure:workspace_csv_upload")
CONFIRM = reverse("disclosure:workspace_csv_confirm")
HEADER = "reference,answer,statement\n"


def download(client, **params) -> tuple[bytes, list[list[str]]]:
    response = client.get(DOWNLOAD, params)
    assert_safe_download(response, name_ends=".csv")
    content = body(response)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    return content, rows


def upload(client, text: str, *, encoding="utf-8", name="answers.csv", attestation=True):
    data = {
        "csv-file": SimpleUploadedFile(name, text.encode(encoding), content_type="text/csv"),
        "csv-name": "鈴木 一郎",
        "csv-role": "人事部長",
    }
    if attestation:
        data["csv-attestation"] = "on"
        data["csv-attestation_stopped"] = "on"
    return client.post(UPLOAD, data)


def confirm(client, response, capture):
    digest = response.context["digest"]
    with capture(execute=True):
        return client.post(CONFIRM, {"digest": digest})


# --- the download -------------------------------------------------------------------------


def test_the_download_holds_only_the_company_s_open_tasks_in_safe_cells(client, signed_in):
    employer, _link, _ = signed_in()
    sly = UserFactory(display_name='=HYPERLINK("http://evil.example/","x")')
    mine = make_task(employer, student=sly)
    answered = make_task(employer, status="answered", answer="deleted")
    theirs = make_task(EmployerFactory())
    content, (header, *rows) = download(client)
    assert content.startswith("\ufeff".encode())
    assert header[:3] == ["受付番号", "種類", "請求日"]  # the contact's language
    assert len(header) == 10 and header[-2:] != ["", ""]
    references = [row[0] for row in rows]
    assert references == [mine.request.reference]
    assert answered.request.reference not in references
    assert theirs.request.reference not in references
    (row,) = rows
    assert row[5] == "'" + sly.display_name  # a formula comes out as text
    assert row[6] == sly.email
    assert row[8:] == ["", ""]
    # The filter applies: answered ones on asking.
    _content, (_h, *rows) = download(client, status="answered")
    assert [row[0] for row in rows] == [answered.request.reference]


def test_the_header_follows_the_page_language(client, signed_in, settings):
    signed_in()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    _content, (header, *_rows) = download(client)
    assert header[:3] == ["reference", "kind", "filed"]
    assert header[-2:] == ["answer", "statement"]


def test_the_download_runs_a_fixed_number_of_queries(
    client, signed_in, django_assert_max_num_queries, monkeypatch
):
    # Chunks of 250 here (2,000 in use): six of them show that the count does not grow
    # with the chunks, as 10,000 rows in five did, for a seventh of the rows to make.
    monkeypatch.setattr(workspace_csv, "CSV_CHUNK", 250)
    employer, _link, _ = signed_in()
    students = UserFactory.create_batch(3)
    now = timezone.now()
    requests = DataRequest.objects.bulk_create(
        DataRequest(
            reference=f"C-{n:06d}",
            student=students[n % 3],
            kind="deletion",
            language="ja",
            submitted_at=now - timedelta(minutes=n),
            due_at=now + timedelta(days=14),
        )
        for n in range(1_500)
    )
    RecipientTask.objects.bulk_create(
        RecipientTask(request=r, employer=employer, status="sent", created_at=r.submitted_at)
        for r in requests
    )
    with django_assert_max_num_queries(8):
        response = client.get(DOWNLOAD)
        lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 1_501


# --- the upload -----------------------------------------------------------------------------


@pytest.fixture
def tasks(signed_in):
    employer, link, _ = signed_in()
    return {
        "link": link,
        "good_deleted": make_task(employer),
        "good_held": make_task(employer, kind="disclosure"),
        "good_label": make_task(employer, kind="cessation"),
        "good_refused": make_task(employer),
        "answered": make_task(employer, status="answered", answer="deleted"),
        "misfit": make_task(employer, kind="disclosure"),
        "refused_bare": make_task(employer),
        "duplicate": make_task(employer),
        "theirs": make_task(EmployerFactory()),
    }


def answers_file(t) -> str:
    ref = {name: task.request.reference for name, task in t.items() if name != "link"}
    return (
        "受付番号,回答,回答内容,ignored\n"
        f"{ref['good_deleted']},deleted,,x\n"
        f"{ref['good_held'].lower()},held_none,\n"
        f"{ref['good_label']},利用停止済み,\n"
        f"{ref['good_refused']},refused,法令上の保存義務があるため\n"
        f"{ref['answered']},deleted,\n"
        f"{ref['misfit']},deleted,\n"
        f"{ref['refused_bare']},refused,\n"
        f"{ref['duplicate']},held_none,\n"
        f"{ref['duplicate']},deleted,\n"
        f"{ref['theirs']},deleted,\n"
        "R-NOPE,deleted,\n"
        ",,\n"
    )


def _status(t) -> dict:
    return {
        name: RecipientTask.objects.get(pk=task.pk).status
        for name, task in t.items()
        if name != "link"
    }


def test_a_preview_lists_good_and_bad_rows_and_changes_nothing(client, tasks, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    before = _status(tasks)
    response = upload(client, answers_file(tasks))
    assert response.status_code == 200
    assert _status(tasks) == before
    assert not WorkspaceEvent.objects.filter(kind="answered").exists()
    good = {row.reference: answer for row, answer in response.context["good"]}
    assert set(good) == {
        tasks[name].request.reference
        for name in ("good_deleted", "good_held", "good_label", "good_refused", "duplicate")
    }
    reasons = {(row.number, row.reason) for row in response.context["bad"]}
    assert reasons == {
        (6, "already answered"),
        (7, "this answer does not fit a disclosure request"),
        (8, "“cannot comply” needs a statement of why"),
        (10, "the same reference is in row 9; only that row counts"),
        (11, "unknown reference"),  # another company's: told as unknown
        (12, "unknown reference"),
        (13, "blank row"),
    }
    html = response.content.decode()
    assert "Nothing has been recorded yet." in html
    assert tasks["theirs"].request.student.display_name not in html


def test_confirm_answers_the_good_rows_once_and_the_same_file_again_changes_nothing(
    client, tasks, mailoutbox, django_capture_on_commit_callbacks, settings
):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    text = answers_file(tasks)
    preview = upload(client, text)
    mailoutbox.clear()
    response = confirm(client, preview, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert len(response.context["result"].answered) == 5
    status = _status(tasks)
    for name in ("good_deleted", "good_held", "good_label", "good_refused", "duplicate"):
        assert status[name] == "answered", name
    for name in ("misfit", "refused_bare", "theirs"):
        assert status[name] == "sent", name
    by_name = {
        name: RecipientTask.objects.get(pk=t.pk) for name, t in tasks.items() if name != "link"
    }
    assert by_name["good_held"].answer == "held_none"
    assert by_name["good_label"].answer == "stopped"
    assert by_name["good_refused"].statement == "法令上の保存義務があるため"
    assert by_name["duplicate"].answer == "held_none"  # the first row counts
    assert by_name["good_deleted"].answered_via == "workspace"
    assert by_name["good_deleted"].statement.startswith("I confirm that every copy")
    assert by_name["good_label"].statement.startswith("I confirm that we have stopped")
    assert by_name["good_deleted"].answered_by == "鈴木 一郎 (人事部長)"
    told = {m.to[0] for m in mailoutbox}
    assert tasks["good_deleted"].request.student.email in told
    assert len(mailoutbox) >= 5

    # Confirming again: nothing to do.
    again = confirm(client, preview, django_capture_on_commit_callbacks)
    assert again.status_code == 409 and again.context["result"] is None
    # The same file again: every row now already answered; nothing to confirm.
    second = upload(client, text)
    assert second.context["good"] == []
    assert "already answered" in {row.reason for row in second.context["bad"]}
    assert client.post(CONFIRM, {"digest": second.context["digest"]}).status_code == 409
    assert _status(tasks) == status
    assert WorkspaceEvent.objects.filter(kind="answered").count() == 1


def test_hidden_fields_cannot_choose_what_is_answered(client, tasks):
    upload(client, answers_file(tasks))
    response = client.post(CONFIRM, {"digest": "0" * 64, "task": tasks["misfit"].pk})
    assert response.status_code == 409
    assert RecipientTask.objects.get(pk=tasks["misfit"].pk).status == "sent"


def test_a_shift_jis_file_from_excel_is_read(client, tasks, django_capture_on_commit_callbacks):
    reference = tasks["good_held"].request.reference
    text = f"受付番号,回答,回答内容\r\n{reference},該当データを保有していない,\r\n"
    preview = upload(client, text, encoding="cp932")
    assert [row.reference for row, _label in preview.context["good"]] == [reference]
    confirm(client, preview, django_capture_on_commit_callbacks)
    assert RecipientTask.objects.get(pk=tasks["good_held"].pk).answer == "held_none"


def test_a_deletion_or_cessation_needs_its_attestation(client, tasks):
    text = (
        HEADER
        + f"{tasks['good_deleted'].request.reference},deleted,\n"
        + f"{tasks['good_label'].request.reference},stopped,\n"
    )
    response = upload(client, text, attestation=False)
    assert response.status_code == 400
    errors = response.context["csv_form"].errors
    assert errors["attestation"] and errors["attestation_stopped"]
    assert CSV_SESSION_KEY not in client.session


def test_a_disclosure_needs_what_is_held(client, tasks, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    text = HEADER + f"{tasks['good_held'].request.reference},disclosed,\n"
    (row,) = upload(client, text).context["bad"]
    assert row.reason == "“disclosed” needs a statement of the data you hold"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"x" * (CSV_MAX_BYTES + 1), "2 MB"),
        (b"%PDF-1.4\x00\x01\x02binary", "not a CSV"),
        (b"name,email\nfoo,bar\n", "reference"),
    ],
)
def test_an_oversized_or_unreadable_file_is_refused_and_the_form_shown_again(
    client, tasks, settings, content, words
):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.post(
        UPLOAD,
        {
            "csv-file": SimpleUploadedFile("a.csv", content, content_type="text/csv"),
            "csv-name": "Ichiro",
            "csv-role": "HR",
            "csv-attestation": "on",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert words in html
    assert 'name="csv-name"' in html and 'value="Ichiro"' in html
    assert "nothing was answered" in html
    assert _status(tasks)["good_deleted"] == "sent"


def test_the_list_offers_the_download_and_the_upload(client, tasks):
    html = client.get(LIST, {"kind": "deletion"}).content.decode()
    assert f"{DOWNLOAD}?kind=deletion" in html
    assert UPLOAD in html and 'enctype="multipart/form-data"' in html


def test_signing_out_forgets_a_preview(client, tasks):
    text = HEADER + f"{tasks['good_held'].request.reference},held_none,\n"
    upload(client, text)
    kept = client.session[CSV_SESSION_KEY]
    assert kept["rows"] == [[tasks["good_held"].pk, "held_none", ""]]  # nothing more
    client.post(reverse("disclosure:workspace_sign_out"))
    assert CSV_SESSION_KEY not in client.session


def test_the_language_switcher_after_an_upload_goes_back_to_the_list(
    client, tasks, django_capture_on_commit_callbacks
):
    """The preview and the confirmation answer a POST at addresses no GET opens: choosing a
    language there goes back to the list, never to an empty 405."""
    text = HEADER + f"{tasks['good_held'].request.reference},held_none,\n"
    preview = upload(client, text)
    refused = upload(client, "name,email\nfoo,bar\n")  # the list again, with why
    recorded = confirm(client, upload(client, text), django_capture_on_commit_callbacks)
    nothing = confirm(client, preview, django_capture_on_commit_callbacks)  # already done
    assert [p.status_code for p in (preview, refused, recorded, nothing)] == [200, 400, 200, 409]
    for page in (preview, refused, recorded, nothing):
        url, switched = test_workspace.switch_language(client, page)
        assert url == LIST
        assert switched.status_code == 200 and switched["Content-Language"] == "en"
        client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
