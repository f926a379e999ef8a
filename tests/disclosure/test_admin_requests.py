"""Staff follow data-rights requests in the admin and act on them there (issue 4, "Staff")."""

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone, translation

from consent.services import consent_grant, provision_record
from disclosure.admin import days_left_text
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent
from disclosure.services import request_file
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    StaffFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def purposes():
    return opt_in_purposes()


@pytest.fixture
def make_request(purposes, django_capture_on_commit_callbacks):
    """A student whose data went to two companies files a deletion request; both companies
    have been emailed their link."""

    def make(*, email, companies=("株式会社さくら", "Momiji Holdings"), kind="deletion"):
        _analysis, provision = purposes
        student, _version = student_who_accepted(
            *purposes, email=email, display_name=email.split("@")[0].title()
        )
        employers = [EmployerFactory(name=name) for name in companies]
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(
            student=student, employer=employers[0], purpose=provision, data_items="score"
        )
        with django_capture_on_commit_callbacks(execute=True):
            data_request = request_file(student=student, kind=kind)
        tasks = {t.employer.name: t for t in data_request.tasks.select_related("employer")}
        assert all(t.status == "sent" for t in tasks.values())
        return SimpleNamespace(
            request=data_request, student=student, employers=employers, tasks=tasks
        )

    return make


@pytest.fixture
def filed(make_request, mailoutbox):
    filed = make_request(email="hanako@example.jp")
    mailoutbox.clear()
    return filed


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def post(staff_client, django_capture_on_commit_callbacks):
    """POST through the admin, running what is queued on commit (emails) in this process."""

    def post(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return staff_client.post(url, data)

    return post


MODEL_NAMES = ("datarequest", "recipienttask", "requestevent")


def change_url(data_request):
    return reverse("admin:disclosure_datarequest_change", args=[data_request.pk])


def action_url(name, data_request, task=None):
    args = [data_request.pk] if task is None else [data_request.pk, task.pk]
    return reverse(f"admin:disclosure_datarequest_{name}", args=args)


def listed(response):
    return list(response.context["cl"].result_list)


def events(data_request, kind):
    return list(RequestEvent.objects.filter(request=data_request, kind=kind))


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


# --- reading --------------------------------------------------------------------------------


def test_the_change_page_shows_the_companies_the_timeline_and_the_actions(staff_client, filed):
    response = staff_client.get(change_url(filed.request))

    assert response.status_code == 200
    html = response.content.decode()
    assert "株式会社さくら" in html and "Momiji Holdings" in html
    inline_tasks = response.context["inline_admin_formsets"][0].formset.queryset
    assert set(inline_tasks) == set(filed.tasks.values())
    # [1] is the site's own systems (SourceTaskInline), empty here: no DataSource.
    timeline = list(response.context["inline_admin_formsets"][2].formset.queryset)
    assert timeline == list(RequestEvent.objects.filter(request=filed.request))
    assert [e.kind for e in timeline][-1] == "submitted"  # newest first
    assert {"submitted", "portal_done", "sent"} <= {e.kind for e in timeline}
    assert action_url("extend", filed.request) in html
    assert action_url("cancel", filed.request) in html
    for task in filed.tasks.values():
        for name in ("task_resend", "task_answer", "task_close"):
            assert action_url(name, filed.request, task) in html
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html


def test_the_list_shows_the_due_date_days_left_and_answers(staff_client, filed):
    DataRequest.objects.filter(pk=filed.request.pk).update(
        due_at=timezone.now() - timedelta(days=3)
    )
    filed.request.refresh_from_db()

    response = staff_client.get(reverse("admin:disclosure_datarequest_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert filed.request.reference in html
    assert "0/2" in html
    with translation.override(response["Content-Language"]):
        assert days_left_text(filed.request) in html


def test_days_left_are_in_words(filed):
    # Noon in Tokyo: five days and an hour from 23:30 there would be six calendar days.
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.get_default_timezone())
    with time_machine.travel(noon, tick=False):
        _days_left_are_in_words(filed.request)


def _days_left_are_in_words(data_request):
    now = timezone.now()
    with translation.override("en"):
        data_request.due_at = now + timedelta(days=5, hours=1)
        assert days_left_text(data_request) == "5 days left"
        data_request.due_at = now
        assert days_left_text(data_request) == "due today"
        data_request.due_at = now - timedelta(days=1)
        assert days_left_text(data_request) == "1 day overdue"
        data_request.due_at = now - timedelta(days=4)
        assert days_left_text(data_request) == "4 days overdue"
        data_request.status = DataRequest.Status.COMPLETED
        assert days_left_text(data_request) == "—"


def test_the_list_is_searchable_by_reference_and_student(staff_client, filed, make_request):
    other = make_request(email="taro@example.jp", companies=["Kaede KK"])
    url = reverse("admin:disclosure_datarequest_changelist")

    assert listed(staff_client.get(url, {"q": filed.request.reference})) == [filed.request]
    assert listed(staff_client.get(url, {"q": "taro@example"})) == [other.request]
    assert listed(staff_client.get(url, {"q": "Hanako"})) == [filed.request]


def test_the_overdue_filter_finds_requests_with_an_overdue_company(
    staff_client, filed, make_request
):
    other = make_request(email="taro@example.jp", companies=["Kaede KK"])
    RecipientTask.objects.filter(pk=filed.tasks["Momiji Holdings"].pk).update(overdue=True)
    url = reverse("admin:disclosure_datarequest_changelist")

    assert listed(staff_client.get(url, {"overdue": "yes"})) == [filed.request]
    assert listed(staff_client.get(url, {"overdue": "no"})) == [other.request]
    assert len(listed(staff_client.get(url))) == 2

    tasks = staff_client.get(
        reverse("admin:disclosure_recipienttask_changelist"), {"overdue__exact": "1"}
    )
    assert listed(tasks) == [filed.tasks["Momiji Holdings"]]


def test_the_failed_filter_finds_requests_with_a_failed_email(staff_client, filed, make_request):
    other = make_request(email="taro@example.jp", companies=["Kaede KK"])
    failed_task = filed.tasks["株式会社さくら"]
    EmailMessage.objects.filter(pk=failed_task.email_id).update(
        status=EmailMessage.Status.FAILED, last_error="550 mailbox unavailable"
    )
    url = reverse("admin:disclosure_datarequest_changelist")

    assert listed(staff_client.get(url, {"failed": "yes"})) == [filed.request]
    assert listed(staff_client.get(url, {"failed": "no"})) == [other.request]

    tasks = staff_client.get(
        reverse("admin:disclosure_recipienttask_changelist"), {"failed": "yes"}
    )
    assert listed(tasks) == [failed_task]
    # The action page shows why the email failed.
    resend = staff_client.get(action_url("task_resend", filed.request, failed_task))
    assert "550 mailbox unavailable" in resend.content.decode()


def test_the_list_filters_by_kind_and_status(staff_client, filed, make_request):
    other = make_request(email="taro@example.jp", companies=["Kaede KK"], kind="cessation")
    url = reverse("admin:disclosure_datarequest_changelist")

    assert listed(staff_client.get(url, {"kind__exact": "cessation"})) == [other.request]
    assert set(listed(staff_client.get(url, {"status__exact": "in_progress"}))) == {
        filed.request,
        other.request,
    }


def test_the_task_list_is_searchable_and_links_to_the_request(staff_client, filed):
    url = reverse("admin:disclosure_recipienttask_changelist")

    by_reference = staff_client.get(url, {"q": filed.request.reference})
    assert set(listed(by_reference)) == set(filed.tasks.values())
    assert change_url(filed.request) in by_reference.content.decode()
    by_company = staff_client.get(url, {"q": "さくら"})
    assert listed(by_company) == [filed.tasks["株式会社さくら"]]
    answered = staff_client.get(url, {"answer__exact": "deleted"})
    assert listed(answered) == []


def test_the_lists_run_a_fixed_number_of_queries(
    staff_client, filed, make_request, django_assert_max_num_queries
):
    other = make_request(email="taro@example.jp", companies=[f"Company {i}" for i in range(8)])
    urls = [reverse(f"admin:disclosure_{name}_changelist") for name in MODEL_NAMES]
    urls += [change_url(other.request), change_url(filed.request)]
    # A process looks a content type up once and keeps it: warm, as a running portal is, so
    # the budget does not depend on which test this worker ran before (it failed alone).
    ContentType.objects.get_for_models(DataRequest, RecipientTask, RequestEvent)
    for url in urls:
        # 12, and on a request's page 2 more to record the look (the staff member's roles,
        # one insert: audit/reads.py).
        with django_assert_max_num_queries(14):
            assert staff_client.get(url).status_code == 200


# --- actions --------------------------------------------------------------------------------


def test_an_action_page_shows_a_form_asking_for_a_reason_and_changes_nothing(staff_client, filed):
    task = filed.tasks["株式会社さくら"]
    before = RequestEvent.objects.count()

    response = staff_client.get(action_url("task_resend", filed.request, task))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="reason"' in html and "csrfmiddlewaretoken" in html
    assert response.context["form"].fields["reason"].required
    assert RequestEvent.objects.count() == before
    assert AnswerLink.objects.filter(task=task, revoked_at=None).count() == 1


def test_resending_revokes_the_old_link_and_emails_a_new_one(post, filed, staff, mailoutbox):
    task = filed.tasks["株式会社さくら"]
    old_link = AnswerLink.objects.get(task=task)

    response = post(
        action_url("task_resend", filed.request, task), {"reason": "The company asked again."}
    )

    assert response.status_code == 302
    assert response.url == change_url(filed.request)
    old_link.refresh_from_db()
    assert old_link.revoked_at is not None
    new_link = AnswerLink.objects.get(task=task, revoked_at=None)
    assert new_link.pk != old_link.pk
    assert [m.to for m in mailoutbox] == [[task.employer.primary_contact.email]]
    [event] = events(filed.request, "link_resent")
    assert (event.task, event.actor, event.actor_user) == (task, "staff", staff)
    assert event.detail == "The company asked again."


def test_extending_moves_the_due_date_and_tells_the_student(post, filed, staff, mailoutbox):
    due_before = filed.request.due_at
    RecipientTask.objects.filter(request=filed.request).update(overdue=True)

    response = post(
        action_url("extend", filed.request), {"days": "10", "reason": "Waiting for a letter."}
    )

    assert response.status_code == 302
    filed.request.refresh_from_db()
    assert filed.request.due_at == due_before + timedelta(days=10)
    assert filed.request.extension_reason == "Waiting for a letter."
    assert not RecipientTask.objects.filter(request=filed.request, overdue=True).exists()
    [mail] = mailoutbox
    assert mail.to == [filed.student.email]
    assert "Waiting for a letter." in mail.body
    [event] = events(filed.request, "extended")
    assert (event.actor_user, event.detail) == (staff, "Waiting for a letter.")


def test_recording_the_last_answer_completes_the_request(
    post, filed, staff, mailoutbox, django_capture_on_commit_callbacks
):
    first, last = filed.tasks["株式会社さくら"], filed.tasks["Momiji Holdings"]
    answer = {
        "answer": "deleted",
        "answered_by": "山田 花子",
        "statement": "All records deleted on 3 March.",
        "evidence": "Letter dated 3 March, scanned to the support drive.",
    }

    assert post(action_url("task_answer", filed.request, first), answer).status_code == 302
    filed.request.refresh_from_db()
    assert filed.request.status == "in_progress"

    response = post(action_url("task_answer", filed.request, last), answer)

    assert response.status_code == 302
    last.refresh_from_db()
    assert (last.status, last.answer, last.answered_by) == ("answered", "deleted", "山田 花子")
    assert last.answered_via == "staff"
    assert last.evidence == answer["evidence"]
    assert not AnswerLink.objects.filter(task=last, revoked_at=None).exists()
    filed.request.refresh_from_db()
    assert filed.request.status == "completed"
    answered = events(filed.request, "answered")
    assert len(answered) == 2
    assert all(e.actor == "staff" and e.actor_user == staff for e in answered)
    assert events(filed.request, "completed")
    assert any(m.to == [filed.student.email] for m in mailoutbox)


def test_the_answer_choices_fit_the_kind_of_request(staff_client, filed, make_request):
    task = filed.tasks["株式会社さくら"]
    deletion = staff_client.get(action_url("task_answer", filed.request, task))
    assert [c for c, _label in deletion.context["form"].fields["answer"].choices if c] == [
        "deleted",
        "held_none",
        "refused",
    ]
    cessation = make_request(email="taro@example.jp", companies=["Kaede KK"], kind="cessation")
    task = cessation.tasks["Kaede KK"]
    response = staff_client.get(action_url("task_answer", cessation.request, task))
    assert "stopped" in dict(response.context["form"].fields["answer"].choices)
    assert "deleted" not in dict(response.context["form"].fields["answer"].choices)


def test_closing_a_task_is_recorded_and_the_request_is_partially_completed(post, filed, staff):
    sakura, momiji = filed.tasks["株式会社さくら"], filed.tasks["Momiji Holdings"]

    for task in (sakura, momiji):
        response = post(
            action_url("task_close", filed.request, task), {"reason": "The company is gone."}
        )
        assert response.status_code == 302

    sakura.refresh_from_db()
    assert sakura.status == "closed"
    assert not AnswerLink.objects.filter(task=sakura, revoked_at=None).exists()
    closed = events(filed.request, "closed")
    assert {e.task for e in closed} == {sakura, momiji}
    assert all(e.actor_user == staff and e.detail == "The company is gone." for e in closed)
    filed.request.refresh_from_db()
    assert filed.request.status == "partially_completed"


def test_cancelling_the_request(post, filed, staff, staff_client):
    response = post(action_url("cancel", filed.request), {"reason": "Filed by mistake."})

    assert response.status_code == 302
    filed.request.refresh_from_db()
    assert filed.request.status == "cancelled"
    assert filed.request.cancel_reason == "Filed by mistake."
    assert not AnswerLink.objects.filter(task__request=filed.request, revoked_at=None).exists()
    [event] = events(filed.request, "cancelled")
    assert (event.actor, event.actor_user) == ("staff", staff)
    # Nothing is left to do: the page offers no action and the actions refuse.
    page = staff_client.get(change_url(filed.request)).content.decode()
    assert action_url("extend", filed.request) not in page
    task = filed.tasks["株式会社さくら"]
    assert action_url("task_resend", filed.request, task) not in page
    refused = post(action_url("task_resend", filed.request, task), {"reason": "again"})
    assert refused.status_code == 302
    assert not events(filed.request, "link_resent")
    assert AnswerLink.objects.filter(task=task).count() == 1


def _snapshot(filed):
    return (
        RequestEvent.objects.count(),
        list(DataRequest.objects.values_list("status", "due_at")),
        list(RecipientTask.objects.order_by("pk").values_list("status", "answer")),
        list(AnswerLink.objects.order_by("pk").values_list("pk", "revoked_at")),
        EmailMessage.objects.count(),
    )


@pytest.mark.parametrize(
    "action,data",
    [
        ("task_resend", {"reason": "  "}),
        ("task_close", {"reason": ""}),
        ("extend", {"days": "7", "reason": ""}),
        ("cancel", {}),
        ("task_answer", {"answer": "deleted", "answered_by": "山田", "evidence": ""}),
    ],
)
def test_a_missing_reason_shows_the_form_again_and_changes_nothing(post, filed, action, data):
    task = None if action in ("extend", "cancel") else filed.tasks["株式会社さくら"]
    before = _snapshot(filed)

    response = post(action_url(action, filed.request, task), data)

    assert response.status_code == 200
    form = response.context["form"]
    missing = "evidence" if action == "task_answer" else "reason"
    assert form.errors[missing]
    assert 'class="errornote"' in response.content.decode()
    assert _snapshot(filed) == before
    if action == "task_answer":
        assert "山田" in response.content.decode()  # what was typed is kept


def test_too_long_an_extension_keeps_what_was_typed(post, filed):
    before = _snapshot(filed)

    response = post(
        action_url("extend", filed.request), {"days": "61", "reason": "A long wait ahead."}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["days"]
    assert "A long wait ahead." in response.content.decode()
    assert _snapshot(filed) == before


def test_a_refusal_without_a_statement_is_refused_by_the_service_next_to_the_field(post, filed):
    task = filed.tasks["株式会社さくら"]
    before = _snapshot(filed)

    response = post(
        action_url("task_answer", filed.request, task),
        {"answer": "refused", "answered_by": "山田", "statement": "", "evidence": "phone call"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["statement"]
    assert "phone call" in response.content.decode()
    assert _snapshot(filed) == before


def test_an_answer_that_does_not_fit_the_request_is_refused(post, filed):
    task = filed.tasks["株式会社さくら"]
    response = post(
        action_url("task_answer", filed.request, task),
        {"answer": "disclosed", "answered_by": "山田", "evidence": "email of 3 March"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["answer"]
    task.refresh_from_db()
    assert task.status == "sent"


def test_an_already_answered_task_is_not_answered_again(post, filed, staff_client):
    task = filed.tasks["株式会社さくら"]
    answer = {"answer": "deleted", "answered_by": "山田", "evidence": "letter"}
    assert post(action_url("task_answer", filed.request, task), answer).status_code == 302

    again = post(action_url("task_answer", filed.request, task), {**answer, "answer": "held_none"})

    assert again.status_code == 302
    task.refresh_from_db()
    assert task.answer == "deleted"
    assert len(events(filed.request, "answered")) == 1
    page = staff_client.get(again.url)
    assert messages_of(page)  # says why nothing happened
    assert action_url("task_answer", filed.request, task) not in page.content.decode()


def test_a_task_of_another_request_is_not_found(staff_client, filed, make_request):
    other = make_request(email="taro@example.jp", companies=["Kaede KK"])
    url = action_url("task_resend", filed.request, other.tasks["Kaede KK"])
    assert staff_client.get(url).status_code == 404


def test_actions_refuse_other_methods(staff_client, filed):
    assert staff_client.put(action_url("cancel", filed.request)).status_code == 405


# --- who may --------------------------------------------------------------------------------


def test_a_student_and_an_anonymous_visitor_are_sent_to_the_admin_login(client, filed):
    task = filed.tasks["株式会社さくら"]
    urls = [
        reverse("admin:disclosure_datarequest_changelist"),
        change_url(filed.request),
        action_url("cancel", filed.request),
        action_url("task_resend", filed.request, task),
    ]
    for user in (None, filed.student):
        if user:
            client.force_login(user)
        for url in urls:
            response = client.post(url, {"reason": "x"})
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))
    filed.request.refresh_from_db()
    assert filed.request.status == "in_progress"
    assert not events(filed.request, "link_resent")


def test_staff_who_may_only_view_requests_cannot_act(client, filed):
    viewer = StaffFactory(is_superuser=False)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_datarequest", "view_recipienttask", "view_requestevent"]
        )
    )
    client.force_login(viewer)
    task = filed.tasks["株式会社さくら"]

    page = client.get(change_url(filed.request))
    assert page.status_code == 200
    html = page.content.decode()
    assert "株式会社さくら" in html
    assert action_url("cancel", filed.request) not in html
    assert action_url("task_resend", filed.request, task) not in html
    assert client.get(action_url("cancel", filed.request)).status_code == 403
    assert client.post(action_url("cancel", filed.request), {"reason": "x"}).status_code == 403
    filed.request.refresh_from_db()
    assert filed.request.status == "in_progress"


@pytest.mark.parametrize("model", [DataRequest, RecipientTask, RequestEvent])
def test_requests_tasks_and_the_timeline_cannot_be_added_changed_or_deleted(
    staff_client, filed, model
):
    obj = model.objects.first()
    name = model._meta.model_name
    before = _snapshot(filed)

    assert (
        staff_client.get(reverse(f"admin:disclosure_{name}_change", args=[obj.pk])).status_code
        == 200
    )
    assert (
        staff_client.post(reverse(f"admin:disclosure_{name}_change", args=[obj.pk]), {}).status_code
        == 403
    )
    assert staff_client.get(reverse(f"admin:disclosure_{name}_add")).status_code == 403
    assert staff_client.post(reverse(f"admin:disclosure_{name}_add"), {}).status_code == 403
    delete = reverse(f"admin:disclosure_{name}_delete", args=[obj.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    listing = staff_client.get(reverse(f"admin:disclosure_{name}_changelist"))
    assert "delete_selected" not in listing.content.decode()
    assert _snapshot(filed) == before
    assert model.objects.filter(pk=obj.pk).exists()


def test_the_timeline_is_searchable_by_reference(staff_client, filed, make_request):
    make_request(email="taro@example.jp", companies=["Kaede KK"])
    response = staff_client.get(
        reverse("admin:disclosure_requestevent_changelist"), {"q": filed.request.reference}
    )
    found = listed(response)
    assert found and {e.request for e in found} == {filed.request}


def test_an_action_needs_the_csrf_token(filed, staff):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post(action_url("cancel", filed.request), {"reason": "no token"})
    assert response.status_code == 403
    filed.request.refresh_from_db()
    assert filed.request.status == "in_progress"


def test_the_task_list_filters_by_failed_email_and_open_request(post, staff_client, filed):
    sakura = filed.tasks["株式会社さくら"]
    EmailMessage.objects.filter(pk=sakura.email_id).update(status=EmailMessage.Status.FAILED)
    url = reverse("admin:disclosure_recipienttask_changelist")
    assert listed(staff_client.get(url, {"failed": "no"})) == [filed.tasks["Momiji Holdings"]]

    assert listed(staff_client.get(url, {"failed": "yes"})) == [sakura]

    post(action_url("cancel", filed.request), {"reason": "Filed by mistake."})

    # Cancelling closes every waiting task: nothing is left failing or open.
    assert listed(staff_client.get(url, {"failed": "yes"})) == []
    assert listed(staff_client.get(url, {"open": "yes"})) == []
    assert set(listed(staff_client.get(url, {"open": "no"}))) == set(filed.tasks.values())


def test_a_tasks_page_shows_its_links_and_whether_they_still_work(post, staff_client, filed):
    task = filed.tasks["株式会社さくら"]
    post(action_url("task_resend", filed.request, task), {"reason": "Bounced."})

    response = staff_client.get(reverse("admin:disclosure_recipienttask_change", args=[task.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert f"{filed.request.reference} → 株式会社さくら" in html
    links = list(response.context["inline_admin_formsets"][0].formset.queryset)
    assert len(links) == 2 and [link.revoked_at is None for link in links] == [True, False]
    assert all(link.token_sha256 not in html for link in links)


def test_what_the_portal_did_reads_in_the_admins_language(filed, staff_client):
    """Issue 17, item 4: a Japanese admin page showed "APPI Art. 29-30: records of provision
    ... are kept 3 years", the English sentence stored in the summary."""
    page = reverse("admin:disclosure_datarequest_change", args=[filed.request.pk])
    staff_client.cookies.load({"django_language": "ja"})
    japanese = staff_client.get(page).content.decode()
    assert "APPI Art. 29-30" not in japanese
    assert "法律により保存" in japanese
    staff_client.cookies.load({"django_language": "en"})
    assert "Kept by law" in staff_client.get(page).content.decode()


def test_a_search_within_a_filter_says_so_and_offers_to_search_everything(filed, staff_client):
    """Issue 17, item 5: a dashboard figure's filtered list, then a reference typed in the
    search box, found nothing, the hidden filter still on."""
    url = reverse("admin:disclosure_datarequest_changelist")
    reference = filed.request.reference
    staff_client.cookies.load({"django_language": "en"})
    response = staff_client.get(url, {"status__exact": "completed", "q": reference})
    html = response.content.decode()
    assert response.context["cl"].result_count == 0
    assert "A filter is on" in html
    assert f'href="?q={reference}"' in html
    everything = staff_client.get(url, {"q": reference})
    assert everything.context["cl"].result_count == 1
    assert "A filter is on" not in everything.content.decode()
