"""Every staff change is audited (issue 5, "Audit trail"): each custom action writes one
entry saying who, which object, what changed and the reason given, in the same transaction
as the change; every admin that can change something is an `AuditedModelAdmin`."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from backoffice.roles import PRIVACY_OFFICER, SUPPORT
from consent.models import ApiClient, Consent, ConsentEvent, PolicyVersion
from disclosure.models import DataRequest, RecipientTask, RequestEvent
from portal.models import EmailMessage
from tests.backoffice.helpers import action_url, staff_entries
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(staff_in):
    return staff_in(PRIVACY_OFFICER, email="officer@example.jp")


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


@pytest.fixture
def post(officer_client, django_capture_on_commit_callbacks):
    def post(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return officer_client.post(url, data)

    return post


def _only_entry(**filters) -> AuditEntry:
    [entry] = staff_entries(**filters)
    return entry


def _assert_entry(entry, *, actor, name, target, reason, action=AuditEntry.Action.ACTION):
    assert entry.action == action
    assert entry.name == name
    assert (entry.actor, entry.actor_label) == (actor, actor.email)
    assert (entry.target_type, entry.target_id) == (target._meta.label_lower, str(target.pk))
    assert entry.target_repr == str(target)
    assert entry.reason == reason


# --- the custom staff actions ---------------------------------------------------------------


def test_extending_a_due_date_is_audited(world, post, officer):
    data_request = world.filed.request
    due_before = data_request.due_at

    response = post(action_url("extend", data_request), {"days": "7", "reason": "A letter"})

    assert response.status_code == 302
    data_request.refresh_from_db()
    entry = _only_entry(name="disclosure.extend_due_date")
    _assert_entry(
        entry,
        actor=officer,
        name="disclosure.extend_due_date",
        target=data_request,
        reason="A letter",
    )
    assert entry.changes == {
        "due_at": [due_before.isoformat(), data_request.due_at.isoformat()],
        "days": 7,
    }


def test_cancelling_a_request_is_audited(world, post, officer):
    data_request = world.filed.request

    post(action_url("cancel", data_request), {"reason": "Filed by mistake"})

    entry = _only_entry(name="disclosure.cancel_request")
    _assert_entry(
        entry,
        actor=officer,
        name="disclosure.cancel_request",
        target=data_request,
        reason="Filed by mistake",
    )
    assert entry.changes == {"status": ["in_progress", "cancelled"]}


def test_resending_a_link_is_audited(world, post, officer):
    task = world.task

    post(action_url("task_resend", world.filed.request, task), {"reason": "It bounced"})

    entry = _only_entry(name="disclosure.resend_answer_link")
    _assert_entry(
        entry, actor=officer, name="disclosure.resend_answer_link", target=task, reason="It bounced"
    )
    task.refresh_from_db()
    assert entry.changes == {"answer_link": ["revoked", "new"], "sent_to": task.email.to}
    assert task.email.to == task.employer.primary_contact.email


def test_recording_an_answer_is_audited_with_the_evidence_as_the_reason(world, post, officer):
    task = world.task

    post(
        action_url("task_answer", world.filed.request, task),
        {"answer": "deleted", "answered_by": "山田 花子", "evidence": "Letter of 3 March"},
    )

    entry = _only_entry(name="disclosure.record_answer")
    _assert_entry(
        entry,
        actor=officer,
        name="disclosure.record_answer",
        target=task,
        reason="Letter of 3 March",
    )
    assert entry.changes == {
        "status": ["sent", "answered"],
        "answer": [None, "deleted"],
        "answered_by": [None, "山田 花子"],
        "statement": [None, ""],
    }


def test_closing_a_task_is_audited(world, post, officer):
    task = world.task

    post(action_url("task_close", world.filed.request, task), {"reason": "Company dissolved"})

    entry = _only_entry(name="disclosure.close_task")
    _assert_entry(
        entry, actor=officer, name="disclosure.close_task", target=task, reason="Company dissolved"
    )
    assert entry.changes == {"status": ["sent", "closed"]}


def test_publishing_a_version_is_audited(world, post, officer):
    draft = world.draft

    response = post(
        reverse("admin:consent_policyversion_publish", args=[draft.pk]),
        {"reason": "Approved on 1 April"},
    )

    assert response.status_code == 302
    published = PolicyVersion.objects.get(pk=draft.pk)
    entry = _only_entry(name="consent.publish_policyversion")
    _assert_entry(
        entry,
        actor=officer,
        name="consent.publish_policyversion",
        target=published,
        reason="Approved on 1 April",
    )
    assert entry.changes["published_at"] == [None, published.published_at.isoformat()]
    assert entry.changes["material"] == [draft.material, published.material]


def test_the_review_request_mailing_is_audited_with_its_counts(world, post, officer):
    purpose = world.reconsent_purpose

    post(
        reverse("admin:consent_purpose_impact_request_review", args=[purpose.pk]),
        {"reason": "Version 2019.03 is in force"},
    )

    queued = EmailMessage.objects.filter(kind__startswith="review_policy").count()
    assert queued >= 1
    entry = _only_entry(name="consent.send_reconsent_mailing")
    _assert_entry(
        entry,
        actor=officer,
        name="consent.send_reconsent_mailing",
        target=purpose,
        reason="Version 2019.03 is in force",
    )
    assert entry.changes == {"queued": queued, "skipped": 0, "remaining": 0}


def test_creating_an_api_key_is_audited_without_the_key(world, post, officer):
    employer = world.employer

    response = post(
        reverse("admin:consent_apiclient_add"),
        {"name": "Aoba HR", "kind": "employer", "employer": employer.pk, "reason": "Contract 12"},
    )

    key = response.context["key"]
    client_row = ApiClient.objects.get(name="Aoba HR")
    entry = _only_entry(name="consent.create_api_key")
    _assert_entry(
        entry, actor=officer, name="consent.create_api_key", target=client_row, reason="Contract 12"
    )
    assert entry.changes == {
        "name": [None, "Aoba HR"],
        "kind": [None, "employer"],
        "employer": [None, str(employer)],
        "scopes": [None, ["consents"]],
        "key_prefix": [None, client_row.key_prefix],
    }
    assert key not in str(entry.changes) and client_row.key_sha256 not in str(entry.changes)


def test_revoking_keys_is_audited_once_per_key_revoked(world, post, officer):
    live = world.api_client
    already = ApiClient.objects.create(
        name="old", kind="pipeline", key_prefix="sdp_old1", key_sha256="1" * 64
    )
    ApiClient.objects.filter(pk=already.pk).update(revoked_at=live.created_at)

    post(
        reverse("admin:consent_apiclient_changelist"),
        {
            "action": "revoke",
            "_selected_action": [live.pk, already.pk],
            "post": "yes",
            "reason": "Leaked in a log",
        },
    )

    live.refresh_from_db()
    entry = _only_entry(name="consent.revoke_api_key")
    _assert_entry(
        entry, actor=officer, name="consent.revoke_api_key", target=live, reason="Leaked in a log"
    )
    assert entry.changes == {"revoked_at": [None, live.revoked_at.isoformat()]}


def test_a_consent_change_on_the_students_instruction_is_audited_and_recorded_as_staff(
    world, staff_in, client, django_capture_on_commit_callbacks, mailoutbox
):
    support = staff_in(SUPPORT)
    client.force_login(support)
    case = world.consenting_student
    url = reverse("admin:consent_consentevent_record", args=[case.student.pk])
    form = client.get(url)
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "employer": case.employer.pk,
                "purpose": case.purpose.pk,
                "action": "grant",
                "reason": "Signed letter of 3 March, scanned to the support drive",
            },
        )

    assert response.status_code == 302
    assert response.url == reverse("admin:portal_user_change", args=[case.student.pk])
    event = ConsentEvent.objects.get(student=case.student)
    assert (event.action, event.actor, event.actor_user, event.screen) == (
        "grant",
        "staff",
        support,
        "staff",
    )
    assert event.reason == "Signed letter of 3 March, scanned to the support drive"
    assert Consent.objects.get(student=case.student, employer=case.employer).granted
    assert [m.to for m in mailoutbox] == [[case.student.email]]  # the receipt
    entry = _only_entry(name="consent.staff_consent_change")
    _assert_entry(
        entry,
        actor=support,
        name="consent.staff_consent_change",
        target=case.student,
        reason=event.reason,
    )
    key = f"consent[{case.employer.pk}/{case.purpose.code}]"
    assert entry.changes == {
        key: [False, True],
        "employer": case.employer.name,
        "consent_event": str(event.receipt_id),
    }


def test_a_consent_change_that_changes_nothing_writes_nothing(world, staff_in, client):
    client.force_login(staff_in(SUPPORT))
    case = world.consenting_student

    response = client.post(
        reverse("admin:consent_consentevent_record", args=[case.student.pk]),
        {
            "employer": case.employer.pk,
            "purpose": case.purpose.pk,
            "action": "withdraw",
            "reason": "Letter",
        },
    )

    assert response.status_code == 302
    assert not ConsentEvent.objects.filter(student=case.student).exists()
    assert not staff_entries(name="consent.staff_consent_change").exists()


def test_a_grant_the_rules_refuse_is_shown_on_the_form_and_writes_nothing(world, staff_in, client):
    client.force_login(staff_in(SUPPORT))
    case = world.consenting_student
    _analysis, provision = world.purposes  # not in the version the student accepted

    response = client.post(
        reverse("admin:consent_consentevent_record", args=[case.student.pk]),
        {"employer": case.employer.pk, "purpose": provision.pk, "action": "grant", "reason": "x"},
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not ConsentEvent.objects.filter(student=case.student).exists()
    assert not staff_entries().exists()


# --- one transaction: no change without its entry -------------------------------------------


def test_an_action_whose_audit_entry_fails_changes_nothing(world, officer_client, monkeypatch):
    data_request = world.filed.request
    due_before = data_request.due_at
    events_before = RequestEvent.objects.count()

    def broken(**kwargs):
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr("disclosure.admin.actions.audit_record", broken)
    with pytest.raises(RuntimeError):
        officer_client.post(action_url("extend", data_request), {"days": "7", "reason": "x"})

    data_request.refresh_from_db()
    assert data_request.due_at == due_before
    assert RequestEvent.objects.count() == events_before


def test_publishing_whose_audit_entry_fails_leaves_the_draft_a_draft(
    world, officer_client, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr("consent.admin.policies.audit_record", broken)
    with pytest.raises(RuntimeError):
        officer_client.post(reverse("admin:consent_policyversion_publish", args=[world.draft.pk]))

    assert not PolicyVersion.objects.get(pk=world.draft.pk).is_published


def test_a_refused_action_writes_no_entry(world, post):
    data_request = world.filed.request

    response = post(action_url("extend", data_request), {"days": "7", "reason": ""})

    assert response.status_code == 200
    assert not staff_entries().exists()
    task = world.task
    RecipientTask.objects.filter(pk=task.pk).update(status="closed")
    post(action_url("task_close", data_request, task), {"reason": "again"})
    assert not staff_entries().exists()


# --- form saves through AuditedModelAdmin ---------------------------------------------------


def test_adding_changing_and_deleting_a_draft_is_audited_with_the_reason(
    world, post, officer, superuser, client
):
    purpose = world.purposes[0]
    add = post(
        reverse("admin:consent_policyversion_add"),
        {
            "label": "2099.03",
            "title_ja": "方針",
            "body_ja": "本文",
            "title_en": "Policy",
            "body_en": "Text",
            "purposes": [purpose.pk],
            "effective_at_0": "2099-01-01",
            "effective_at_1": "00:00:00",
            "_audit_reason": "Draft for the new service",
        },
    )
    assert add.status_code == 302
    draft = PolicyVersion.objects.get(label="2099.03")
    added = _only_entry(action=AuditEntry.Action.ADD)
    assert (added.actor, added.target_id, added.reason) == (
        officer,
        str(draft.pk),
        "Draft for the new service",
    )
    assert added.changes["title_en"] == [None, "Policy"]
    assert added.changes["purposes"] == [None, [str(purpose)]]

    change = post(
        reverse("admin:consent_policyversion_change", args=[draft.pk]),
        {
            "label": "2099.03",
            "title_ja": "方針",
            "body_ja": "本文",
            "title_en": "Privacy policy",
            "body_en": "Text",
            "purposes": [purpose.pk],
            "effective_at_0": "2099-01-01",
            "effective_at_1": "00:00:00",
            # As the page renders them: a field with a default posts its initial value too.
            "initial-effective_at_0": "2099-01-01",
            "initial-effective_at_1": "00:00:00",
            "_audit_reason": "Clearer title",
        },
    )
    assert change.status_code == 302
    changed = _only_entry(action=AuditEntry.Action.CHANGE)
    assert changed.changes == {"title_en": ["Policy", "Privacy policy"]}
    assert changed.reason == "Clearer title"

    # Deleting a draft is a superuser's (no role deletes versions).
    client.force_login(superuser)
    delete = client.post(
        reverse("admin:consent_policyversion_delete", args=[draft.pk]),
        {"post": "yes", "_audit_reason": "Not needed"},
    )
    assert delete.status_code == 302
    deleted = _only_entry(action=AuditEntry.Action.DELETE)
    assert (deleted.actor, deleted.target_repr, deleted.target_id) == (
        superuser,
        str(draft),
        str(draft.pk),
    )


def test_giving_someone_a_role_is_audited(superuser, client):
    client.force_login(superuser)
    person = UserFactory(email="new-staff@example.jp")
    url = reverse("admin:portal_user_change", args=[person.pk])
    support = Group.objects.get(name=SUPPORT)

    response = client.post(
        url,
        {
            "email": person.email,
            "display_name": person.display_name,
            "language": "ja",
            "is_active": "on",
            "is_staff": "on",
            "groups": [support.pk],
            "_audit_reason": "Joined the support team",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = _only_entry(action=AuditEntry.Action.CHANGE)
    assert (entry.actor, entry.target_id) == (superuser, str(person.pk))
    assert entry.changes["is_staff"] == [False, True]
    assert entry.changes["groups"] == [[], [SUPPORT]]
    assert entry.reason == "Joined the support team"


def test_changing_a_password_in_the_admin_is_audited_without_the_password(superuser, client):
    client.force_login(superuser)
    person = UserFactory()
    url = reverse("admin:auth_user_password_change", args=[person.pk])

    response = client.post(
        url,
        {"password1": "a-new-long-passphrase-1", "password2": "a-new-long-passphrase-1"},
    )

    assert response.status_code == 302
    entry = _only_entry(action=AuditEntry.Action.CHANGE)
    assert (entry.actor, entry.target_id) == (superuser, str(person.pk))
    assert "a-new-long-passphrase-1" not in str(entry.changes)
    assert list(entry.changes) == ["password"]


# --- every admin that changes something is audited ------------------------------------------


def _request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_every_admin_that_can_change_something_is_audited(superuser):
    """A superuser holds every permission: an admin that lets even them add, change or delete
    must write it to the audit log."""
    request = _request_as(superuser)
    writable = []
    for model, model_admin in admin.site._registry.items():
        can_write = (
            model_admin.has_add_permission(request)
            or model_admin.has_change_permission(request)
            or model_admin.has_delete_permission(request)
        )
        if can_write:
            writable.append(model)
            assert isinstance(model_admin, AuditedModelAdmin), (
                f"{type(model_admin).__name__} ({model._meta.label}) can change rows but "
                "does not write them to the audit log"
            )
    # The walk saw the admins that do write, not an empty registry.
    labels = {model._meta.label for model in writable}
    assert {"portal.User", "auth.Group", "consent.PolicyVersion", "consent.ApiClient"} <= labels
    assert "portal.Employer" in labels


def test_the_admins_that_change_nothing_refuse_every_write(superuser):
    request = _request_as(superuser)
    for model in (DataRequest, RecipientTask, RequestEvent, ConsentEvent, EmailMessage):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
