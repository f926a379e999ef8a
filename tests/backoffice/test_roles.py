"""The staff roles (issue 5, "Roles"): two groups made by a migration, each holding exactly
the permissions of backoffice/roles.py; every action works for a role that holds its
permission and is refused (403, nothing changed) to one that does not; the ledgers are
read-only for everyone, superusers included."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.forms import MultiWidget
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.roles import PRIVACY_OFFICER, ROLES, SUPPORT
from consent.models import (
    ApiClient,
    Consent,
    ConsentEvent,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    StopUseNotice,
)
from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent, SourceTask
from disclosure.services import request_file
from inferences.models import (
    Inference,
    InferenceDispute,
    InferenceModel,
    InferenceObjection,
    ObjectionNotice,
)
from portal.models import ActivityRecord, EmailMessage, Employer, PrivacyContact
from tests.backoffice.helpers import action_url, staff_entries
from tests.factories import EmployerFactory, StaffFactory, student_who_accepted

pytestmark = pytest.mark.django_db

NO_ROLE = None  # a staff member in no group
ROLE_NAMES = [SUPPORT, PRIVACY_OFFICER, NO_ROLE]
EVERY_PERMISSION = sorted(ROLES[SUPPORT] | ROLES[PRIVACY_OFFICER])

LEDGERS = [
    PolicyAcceptance,
    ConsentEvent,
    Consent,
    Provision,
    StopUseNotice,
    RequestEvent,
    ActivityRecord,
    EmailMessage,
    Inference,
    InferenceObjection,
    ObjectionNotice,
    InferenceDispute,
]


def _dotted(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def _role_id(role):
    return role or "no role"


# --- the groups -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [SUPPORT, PRIVACY_OFFICER])
def test_the_migration_made_each_group_with_exactly_its_permissions(role):
    group = Group.objects.get(name=role)
    held = {_dotted(p) for p in group.permissions.select_related("content_type")}
    assert held == ROLES[role]


def test_a_privacy_officer_can_do_everything_support_can_and_more():
    assert ROLES[SUPPORT] < ROLES[PRIVACY_OFFICER]


def test_nobody_may_change_or_delete_a_ledger_row():
    for model in [*LEDGERS, RecipientTask, DataRequest, AnswerLink]:
        name = model._meta.model_name
        forbidden = {f"{model._meta.app_label}.{verb}_{name}" for verb in ("change", "delete")}
        for role, permissions in ROLES.items():
            assert not forbidden & permissions, (role, forbidden & permissions)


def test_a_staff_member_in_a_role_holds_its_permissions(staff_in):
    support = staff_in(SUPPORT)
    assert support.has_perm("disclosure.extend_due_date")
    assert not support.has_perm("disclosure.cancel_request")
    assert not support.has_perm("consent.change_consentevent")
    officer = staff_in(PRIVACY_OFFICER)
    assert officer.has_perm("disclosure.cancel_request")
    assert officer.get_all_permissions() == ROLES[PRIVACY_OFFICER]


# --- every action, for every role -----------------------------------------------------------


def _form_data(response) -> dict:
    """What the admin's change form would post back unchanged: its fields and inlines."""

    def add(data, bound):
        value, widget = bound.value(), bound.field.widget
        if isinstance(widget, MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                data[f"{bound.html_name}_{i}"] = "" if part is None else str(part)
        elif value is True:
            data[bound.html_name] = "on"
        elif value is None or value is False:  # (not 0, which equals False)
            return
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        else:
            data[bound.html_name] = str(value)

    data = {}
    form = response.context["adminform"].form
    for bound in form:
        add(data, bound)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for bound in formset.management_form:
            data[bound.html_name] = bound.value()
        for inline_form in formset.forms:
            for bound in inline_form:
                add(data, bound)
    return data


def _superuser_form(world_client, url: str) -> dict:
    response = world_client.get(url)
    assert response.status_code == 200
    return _form_data(response)


@dataclass
class Case:
    """`perform` does the action as the client; `state` is what it changes (None for a page
    that only reads)."""

    perform: Callable
    state: Callable | None = None


def _employer_url(world, view="change"):
    args = [] if view == "add" else [world.employer.pk]
    return reverse(f"admin:portal_employer_{view}", args=args)


def _contacts(world):
    return sorted(
        PrivacyContact.objects.filter(employer=world.employer).values_list("name", "email")
    )


def _post_employer(admin_client, client, world, change: Callable[[dict], None]):
    data = _superuser_form(admin_client, _employer_url(world))
    change(data)
    return client.post(_employer_url(world), data)


def _second_contact_index(data) -> int:
    return next(
        i
        for i in range(int(data["contacts-TOTAL_FORMS"]))
        if data.get(f"contacts-{i}-email") == "legal@aoba.example"
    )


def _add_contact(data):
    extra = int(data["contacts-INITIAL_FORMS"])
    data[f"contacts-{extra}-name"] = "DPO"
    data[f"contacts-{extra}-email"] = "dpo@aoba.example"
    data[f"contacts-{extra}-language"] = "en"


def _rename_contact(data):
    data[f"contacts-{_second_contact_index(data)}-name"] = "Legal department"


def _delete_contact(data):
    data[f"contacts-{_second_contact_index(data)}-DELETE"] = "on"


def _new_employer(admin_client, client, world):
    data = _superuser_form(admin_client, _employer_url(world, "add"))
    data.update(
        {
            "name": "株式会社かえで",
            "contacts-0-name": "人事部",
            "contacts-0-email": "privacy@kaede.example",
            "contacts-0-language": "ja",
            "contacts-0-is_primary": "on",
        }
    )
    return client.post(_employer_url(world, "add"), data)


def _new_draft(admin_client, client, world):
    return client.post(
        reverse("admin:consent_policyversion_add"),
        {
            "label": "2099.02",
            "title_ja": "プライバシーポリシー",
            "body_ja": "本文",
            "title_en": "Privacy policy",
            "body_en": "Text",
            "summary_ja": "",
            "summary_en": "",
            "purposes": [world.purposes[0].pk],
            "effective_at_0": "2099-01-01",
            "effective_at_1": "00:00:00",
            "_audit_reason": "Next year's policy",
        },
    )


def _edit_draft(admin_client, client, world):
    url = reverse("admin:consent_policyversion_change", args=[world.draft.pk])
    data = _superuser_form(admin_client, url)
    data["title_en"] = "Privacy policy (revised draft)"
    return client.post(url, data)


def _impact_report(admin_client, client, world):
    purpose = world.reconsent_purpose
    page = client.get(reverse("admin:consent_purpose_impact", args=[purpose.pk]))
    csv = client.get(reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, "unlisted"]))
    assert page.status_code == csv.status_code
    return page


def _record_consent(admin_client, client, world):
    case = world.consenting_student
    return client.post(
        reverse("admin:consent_consentevent_record", args=[case.student.pk]),
        {
            "employer": case.employer.pk,
            "purpose": case.purpose.pk,
            "action": "grant",
            "reason": "Letter of 3 March asking to turn it on",
        },
    )


def _colleague(world):
    """A staff member who lost their phone: made once per test, with an authenticator app."""
    if not hasattr(world, "colleague"):
        world.colleague = StaffFactory(is_superuser=False, email="lost-phone@example.jp")
    return world.colleague


def _reset_second_factor(admin_client, client, world):
    return client.post(
        reverse("admin:portal_user_reset_second_factor", args=[_colleague(world).pk]),
        {"reason": "Lost phone; came in person with their staff card on 3 March"},
    )


def _webhook(world):
    """The company's webhook: made once per test, active."""
    from disclosure.models import Webhook

    if not hasattr(world, "webhook"):
        world.webhook = Webhook.objects.create(
            employer=world.employer, endpoint="https://hooks.aoba.example/portal"
        )
    return world.webhook


def _switch_webhook_off(admin_client, client, world):
    url = reverse("admin:disclosure_webhook_change", args=[_webhook(world).pk])
    data = _superuser_form(admin_client, url)
    data.pop("active", None)  # the box unticked
    return client.post(url, data)


def _webhook_active(world):
    return type(_webhook(world)).objects.get(pk=_webhook(world).pk).active


def _new_model(admin_client, client, world):
    purpose = world.purposes[0]
    data = {
        "code": "interest_level",
        "version": "1.0",
        "name_ja": "関心度",
        "name_en": "Interest level",
        "accountable": "データ分析部長",
        "predicts_ja": "この企業への関心の度合い",
        "predicts_en": "How interested you seem in this company",
        "data_categories_ja": "閲覧履歴",
        "data_categories_en": "Pages viewed",
        "purpose": purpose.pk,
        "use_ja": "連絡の順番",
        "use_en": "Whom to contact first",
        "never_ja": "合否の判断",
        "never_en": "A pass/fail decision",
        "output_kind": "label",
        "labels": "A\nB\nC",
        "output_meaning_ja": "Aが最も高い",
        "output_meaning_en": "A is the highest",
        "_audit_reason": "The pipeline's second model",
    }
    return client.post(reverse("admin:inferences_inferencemodel_add"), data)


def _edit_model(admin_client, client, world):
    url = reverse("admin:inferences_inferencemodel_change", args=[world.draft_model.pk])
    data = _superuser_form(admin_client, url)
    data["never_en"] = "Never in a pass/fail decision, nor to rank candidates"
    return client.post(url, data)


def _task_state(world):
    return RecipientTask.objects.filter(pk=world.task.pk).values_list("status", "answer").get()


CASES: dict[str, Case] = {
    "inferences.add_inferencemodel": Case(
        _new_model, lambda w: InferenceModel.objects.filter(code="interest_level").count()
    ),
    "inferences.change_inferencemodel": Case(
        _edit_model, lambda w: InferenceModel.objects.get(pk=w.draft_model.pk).never_en
    ),
    "inferences.activate_inferencemodel": Case(
        lambda a, c, w: c.post(
            reverse("admin:inferences_inferencemodel_activate", args=[w.draft_model.pk]),
            {"reason": "Reviewed by the privacy committee"},
        ),
        lambda w: InferenceModel.objects.get(pk=w.draft_model.pk).activated_at,
    ),
    "inferences.answer_inferencedispute": Case(
        lambda a, c, w: c.post(
            reverse("admin:inferences_inferencedispute_answer", args=[w.dispute.pk]),
            {"outcome": "not_upheld", "answer": "The score was computed correctly."},
        ),
        lambda w: InferenceDispute.objects.get(pk=w.dispute.pk).answered_at,
    ),
    "disclosure.change_webhook": Case(_switch_webhook_off, _webhook_active),
    "disclosure.extend_due_date": Case(
        lambda a, c, w: c.post(
            action_url("extend", w.filed.request), {"days": "7", "reason": "Waiting for a letter"}
        ),
        lambda w: DataRequest.objects.get(pk=w.filed.request.pk).due_at,
    ),
    "disclosure.cancel_request": Case(
        lambda a, c, w: c.post(action_url("cancel", w.filed.request), {"reason": "By mistake"}),
        lambda w: DataRequest.objects.get(pk=w.filed.request.pk).status,
    ),
    "disclosure.resend_answer_link": Case(
        lambda a, c, w: c.post(
            action_url("task_resend", w.filed.request, w.task), {"reason": "Bounced"}
        ),
        lambda w: sorted(AnswerLink.objects.filter(task=w.task).values_list("pk", "revoked_at")),
    ),
    "disclosure.record_answer": Case(
        lambda a, c, w: c.post(
            action_url("task_answer", w.filed.request, w.task),
            {"answer": "deleted", "answered_by": "山田 花子", "evidence": "Letter of 3 March"},
        ),
        _task_state,
    ),
    "disclosure.close_task": Case(
        lambda a, c, w: c.post(
            action_url("task_close", w.filed.request, w.task), {"reason": "Company closed"}
        ),
        _task_state,
    ),
    "consent.publish_policyversion": Case(
        lambda a, c, w: c.post(
            reverse("admin:consent_policyversion_publish", args=[w.draft.pk]),
            {"reason": "Approved by the board"},
        ),
        lambda w: PolicyVersion.objects.get(pk=w.draft.pk).published_at,
    ),
    "consent.add_policyversion": Case(
        _new_draft, lambda w: PolicyVersion.objects.filter(label="2099.02").count()
    ),
    "consent.change_policyversion": Case(
        _edit_draft, lambda w: PolicyVersion.objects.get(pk=w.draft.pk).title_en
    ),
    "consent.run_impact_report": Case(_impact_report),
    "consent.send_reconsent_mailing": Case(
        lambda a, c, w: c.post(
            reverse("admin:consent_purpose_impact_request_review", args=[w.reconsent_purpose.pk]),
            {"reason": "New version in force"},
        ),
        lambda w: EmailMessage.objects.filter(kind__startswith="review_policy").count(),
    ),
    "consent.add_apiclient": Case(
        lambda a, c, w: c.post(
            reverse("admin:consent_apiclient_add"),
            {"name": "Second pipeline", "kind": "pipeline", "reason": "Staging"},
        ),
        lambda w: ApiClient.objects.count(),
    ),
    "consent.change_apiclient": Case(
        lambda a, c, w: c.post(
            reverse("admin:consent_apiclient_changelist"),
            {
                "action": "revoke",
                "_selected_action": [w.api_client.pk],
                "post": "yes",
                "reason": "Leaked",
            },
        ),
        lambda w: ApiClient.objects.get(pk=w.api_client.pk).revoked_at,
    ),
    "consent.add_consentevent": Case(
        _record_consent,
        lambda w: ConsentEvent.objects.filter(student=w.consenting_student.student).count(),
    ),
    "portal.reset_second_factor": Case(
        _reset_second_factor,
        lambda w: Authenticator.objects.filter(user=_colleague(w)).count(),
    ),
    "portal.add_employer": Case(_new_employer, lambda w: Employer.objects.count()),
    "portal.change_employer": Case(
        lambda a, c, w: _post_employer(a, c, w, lambda d: d.update(name="Aoba Systems KK")),
        lambda w: Employer.objects.get(pk=w.employer.pk).name,
    ),
    "portal.add_privacycontact": Case(
        lambda a, c, w: _post_employer(a, c, w, _add_contact), _contacts
    ),
    "portal.change_privacycontact": Case(
        lambda a, c, w: _post_employer(a, c, w, _rename_contact), _contacts
    ),
    "portal.delete_privacycontact": Case(
        lambda a, c, w: _post_employer(a, c, w, _delete_contact), _contacts
    ),
}


def _view_case(dotted: str) -> Case:
    """Seeing a list: its page, for each view permission (answer links are shown on a
    company's task page, as a table, not on a page of their own)."""
    app_label, codename = dotted.split(".")
    model_name = codename.removeprefix("view_")
    if dotted == "disclosure.view_answerlink":

        def perform(a, c, w):
            response = c.get(reverse("admin:disclosure_recipienttask_change", args=[w.task.pk]))
            if response.status_code == 200:
                shown = [f.formset.model for f in response.context["inline_admin_formsets"]]
                assert shown == [AnswerLink]
            return response

        return Case(perform)
    if dotted == "disclosure.view_sourcetask":  # shown on the request's page, as a table

        def perform(a, c, w):
            page = reverse("admin:disclosure_datarequest_change", args=[w.task.request_id])
            response = c.get(page)
            if response.status_code == 200:
                shown = [f.formset.model for f in response.context["inline_admin_formsets"]]
                assert SourceTask in shown
            return response

        return Case(perform)
    return Case(lambda a, c, w: c.get(reverse(f"admin:{app_label}_{model_name}_changelist")))


def _case(dotted: str) -> Case:
    if dotted in CASES:
        return CASES[dotted]
    assert ".view_" in dotted, f"{dotted} has no test: add it to CASES"
    return _view_case(dotted)


def test_every_permission_of_the_spec_is_exercised():
    for dotted in EVERY_PERMISSION:
        _case(dotted)  # fails for a permission with no way to try it


@pytest.mark.parametrize("role", ROLE_NAMES, ids=_role_id)
@pytest.mark.parametrize("dotted", EVERY_PERMISSION)
def test_each_action_works_for_a_role_that_holds_it_and_is_refused_to_one_that_does_not(
    world, staff_in, superuser, dotted, role, django_capture_on_commit_callbacks
):
    case = _case(dotted)
    admin_client = Client()
    admin_client.force_login(superuser)
    client = Client()
    client.force_login(staff_in(role))
    before = case.state(world) if case.state else None
    entries_before = staff_entries().count()

    with django_capture_on_commit_callbacks(execute=True):
        response = case.perform(admin_client, client, world)

    allowed = role is not None and dotted in ROLES[role]
    if allowed:
        assert response.status_code in (200, 302), response.content.decode()[:2000]
        if case.state is not None:
            assert case.state(world) != before
            assert staff_entries().count() > entries_before  # and it was audited
    else:
        assert response.status_code == 403
        if case.state is not None:
            assert case.state(world) == before
        assert staff_entries().count() == entries_before


# --- what each role is shown ----------------------------------------------------------------


def test_the_request_page_shows_each_role_only_the_actions_it_may_take(world, staff_in, client):
    request, task = world.filed.request, world.task
    links = {
        "disclosure.extend_due_date": action_url("extend", request),
        "disclosure.cancel_request": action_url("cancel", request),
        "disclosure.resend_answer_link": action_url("task_resend", request, task),
        "disclosure.record_answer": action_url("task_answer", request, task),
        "disclosure.close_task": action_url("task_close", request, task),
    }
    for role in (SUPPORT, PRIVACY_OFFICER):
        client.force_login(staff_in(role))
        pages = [
            client.get(reverse("admin:disclosure_datarequest_change", args=[request.pk])),
            client.get(reverse("admin:disclosure_recipienttask_changelist")),
        ]
        html = pages[0].content.decode()
        tasks_html = pages[1].content.decode()
        for perm, url in links.items():
            shown = perm in ROLES[role]
            assert (url in html) is shown, (role, perm)
            if "task_" in url:
                assert (url in tasks_html) is shown, (role, perm)


def test_publishing_and_the_impact_report_are_offered_only_to_the_privacy_officer(
    world, staff_in, client
):
    purpose = world.reconsent_purpose
    publish = reverse("admin:consent_policyversion_publish", args=[world.draft.pk])
    report = reverse("admin:consent_purpose_impact", args=[purpose.pk])
    mailing = reverse("admin:consent_purpose_impact_request_review", args=[purpose.pk])
    for role, shown in ((SUPPORT, False), (PRIVACY_OFFICER, True)):
        client.force_login(staff_in(role))
        preview = client.get(reverse("admin:consent_policyversion_preview", args=[world.draft.pk]))
        assert preview.status_code == 200
        assert (publish in preview.content.decode()) is shown
        purposes = client.get(reverse("admin:consent_purpose_changelist")).content.decode()
        assert (report in purposes) is shown
        page = client.get(reverse("admin:consent_purpose_change", args=[purpose.pk]))
        assert (report in page.content.decode()) is shown
        if shown:
            assert mailing in client.get(report).content.decode()


def test_a_staff_member_in_no_role_cannot_read_a_drafts_preview(world, staff_in, client):
    client.force_login(staff_in(NO_ROLE))
    preview = client.get(reverse("admin:consent_policyversion_preview", args=[world.draft.pk]))
    assert preview.status_code == 403
    assert world.draft.body_ja not in preview.content.decode()


def test_api_keys_and_the_audit_log_are_not_in_supports_admin(world, staff_in, client):
    client.force_login(staff_in(SUPPORT))
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:consent_apiclient_changelist") not in index
    assert reverse("admin:audit_auditentry_changelist") not in index
    assert reverse("admin:disclosure_datarequest_changelist") in index
    client.force_login(staff_in(PRIVACY_OFFICER))
    listing = client.get(reverse("admin:consent_apiclient_changelist")).content.decode()
    assert reverse("admin:consent_apiclient_add") in listing


def test_the_student_page_offers_the_consent_form_and_the_students_records(world, staff_in, client):
    student = world.consenting_student.student
    page_url = reverse("admin:portal_user_change", args=[student.pk])
    client.force_login(staff_in(SUPPORT))
    html = client.get(page_url).content.decode()
    assert reverse("admin:consent_consentevent_record", args=[student.pk]) in html
    assert (
        f"{reverse('admin:consent_consentevent_changelist')}?student__id__exact={student.pk}"
        in html
    )
    assert 'name="_save"' not in html  # Support reads students; it does not edit them
    client.force_login(staff_in(NO_ROLE))
    assert client.get(page_url).status_code == 403


def test_the_students_records_links_list_only_their_rows(world, superuser, client):
    filed = world.ledgers
    other = world.consenting_student
    consent_grant(student=other.student, employer=other.employer, purpose=other.purpose)
    client.force_login(superuser)
    for model in (ConsentEvent, Consent, PolicyAcceptance, Provision, ActivityRecord, DataRequest):
        response = client.get(
            _admin_url(model, "changelist"), {"student__id__exact": filed.student.pk}
        )
        rows = list(response.context["cl"].result_list)
        assert rows, model
        assert {row.student for row in rows} == {filed.student}, model
        assert model.objects.exclude(student=filed.student).exists() or model in (
            Provision,
            ActivityRecord,
            DataRequest,
        )


# --- the pages a role opens run a fixed number of queries ------------------------------------

ROLE_PAGES = [
    "consent_consentevent_changelist",
    "consent_consent_changelist",
    "consent_provision_changelist",
    "consent_stopusenotice_changelist",
    "consent_policyacceptance_changelist",
    "disclosure_requestevent_changelist",
    "disclosure_recipienttask_changelist",
    "disclosure_datarequest_changelist",
    "portal_activityrecord_changelist",
    "portal_emailmessage_changelist",
    "portal_user_changelist",
    "consent_purpose_changelist",
    "consent_policyversion_changelist",
]


def _query_counts(client, urls) -> dict:
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        counts[url] = len(queries)
    return counts


@pytest.mark.parametrize("role", [SUPPORT, PRIVACY_OFFICER])
def test_the_pages_a_role_opens_run_a_fixed_number_of_queries(
    world, staff_in, client, role, django_capture_on_commit_callbacks
):
    filed = world.ledgers
    urls = [reverse(f"admin:{name}") for name in ROLE_PAGES] + [
        reverse("admin:disclosure_datarequest_change", args=[filed.request.pk]),
        reverse("admin:disclosure_recipienttask_change", args=[filed.tasks[0].pk]),
        reverse("admin:portal_user_change", args=[filed.student.pk]),
        reverse("admin:consent_consentevent_record", args=[filed.student.pk]),
    ]
    client.force_login(staff_in(role))
    _query_counts(client, urls)  # caches warmed (content types, the session)
    small = _query_counts(client, urls)

    # More students, companies, requests and events: the same number of queries.
    analysis, provision = world.purposes
    for n in range(3):
        student, _version = student_who_accepted(analysis, provision, email=f"more{n}@example.jp")
        companies = [EmployerFactory() for _ in range(4)]
        for company in companies:
            consent_grant(student=student, employer=company, purpose=provision)
            provision_record(student=student, employer=company, purpose=provision, data_items="x")
        with django_capture_on_commit_callbacks(execute=True):
            request_file(student=student, kind="deletion")
    for task in RecipientTask.objects.filter(request=filed.request):
        AnswerLink.objects.create(
            task=task,
            token_sha256=f"{task.pk:064d}",
            expires_at=timezone.now(),
        )
    large = _query_counts(client, urls)

    assert large == small
    # 14, and 2 on a page showing a student's data to record the look (the staff member's
    # roles, one insert: audit/reads.py).
    assert max(large.values()) <= 16, large


# --- the ledgers are read-only, superusers included -----------------------------------------


def _admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_a_ledger_refuses_add_change_and_delete_even_to_a_superuser(world, superuser, model):
    world.ledgers  # noqa: B018 - makes a row in every ledger
    client = Client()
    client.force_login(superuser)
    row = model.objects.order_by("pk").first()
    assert row is not None
    stored = model_to_dict(row)
    count = model.objects.count()
    forged = {
        name: "forged" if isinstance(value, str) else value
        for name, value in stored.items()
        if value is not None and not isinstance(value, list | dict)
    }

    change = client.post(_admin_url(model, "change", row.pk), forged)
    add = client.post(_admin_url(model, "add"), forged)
    delete = client.post(_admin_url(model, "delete", row.pk), {"post": "yes"})
    bulk = client.post(
        _admin_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk]}
    )

    assert (change.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    assert bulk.status_code == 200 and "delete_selected" not in bulk.content.decode()
    assert model.objects.count() == count
    assert model_to_dict(model.objects.get(pk=row.pk)) == stored
    page = client.get(_admin_url(model, "change", row.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        _admin_url(model, "add") not in client.get(_admin_url(model, "changelist")).content.decode()
    )


@pytest.mark.parametrize(
    "model,query,expected",
    [
        (ConsentEvent, {"q": "hanako@example"}, "student"),
        (Consent, {"q": "さくら"}, "employer"),
        (Provision, {"q": "hanako@example"}, "student"),
        (StopUseNotice, {"q": "さくら"}, "employer"),
        (RequestEvent, {"q": "hanako@example"}, "request"),
        (RequestEvent, {"q": "さくら"}, "task"),
        (ActivityRecord, {"q": "hanako@example"}, "student"),
        (EmailMessage, {"q": "hanako@example"}, "to"),
        (PolicyAcceptance, {"q": "hanako@example"}, "student"),
    ],
    ids=lambda v: getattr(v, "__name__", None) or str(v),
)
def test_ledgers_are_searchable_by_student_and_employer(
    world, superuser, client, model, query, expected
):
    filed = world.ledgers
    world.consenting_student  # noqa: B018 - someone else's rows that must not match
    client.force_login(superuser)

    response = client.get(_admin_url(model, "changelist"), query)

    rows = list(response.context["cl"].result_list)
    assert rows
    for row in rows:
        value = getattr(row, expected)
        if expected == "student":
            assert value == filed.student
        elif expected == "employer":
            assert value.name == "株式会社さくら"
        elif expected == "request":
            assert value.student == filed.student
        elif expected == "task":
            assert value is not None and value.employer.name == "株式会社さくら"
        else:
            assert value == filed.student.email


@pytest.mark.parametrize(
    "model,field",
    [
        (ConsentEvent, "employer"),
        (Consent, "employer"),
        (Provision, "employer"),
        (StopUseNotice, "employer"),
        (ConsentEvent, "purpose"),
        (Consent, "purpose"),
        (Provision, "purpose"),
        (StopUseNotice, "event__purpose"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_ledgers_filter_by_employer_and_purpose(world, superuser, client, model, field):
    filed = world.ledgers
    analysis, _provision = world.purposes
    # Someone else's rows, at another company.
    other = world.consenting_student
    consent_grant(student=other.student, employer=other.employer, purpose=analysis)
    provision_record(
        student=other.student, employer=other.employer, purpose=analysis, data_items="x"
    )
    consent_withdraw(student=other.student, employer=other.employer, purpose=analysis)
    wanted = filed.tasks[0].employer if field == "employer" else analysis
    client.force_login(superuser)

    response = client.get(_admin_url(model, "changelist"), {f"{field}__id__exact": wanted.pk})

    assert response.status_code == 200
    rows = sorted(response.context["cl"].result_list, key=lambda row: row.pk)
    expected = list(model.objects.filter(**{field: wanted}).order_by("pk"))
    assert expected and rows == expected
    assert len(expected) < model.objects.count()


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_ledgers_filter_by_date(world, superuser, client, model):
    world.ledgers  # noqa: B018 - a row in every ledger, made today
    client.force_login(superuser)
    hierarchy = admin.site._registry[model].date_hierarchy
    assert hierarchy
    today = timezone.localdate()

    this_year = client.get(_admin_url(model, "changelist"), {f"{hierarchy}__year": today.year})
    last_year = client.get(_admin_url(model, "changelist"), {f"{hierarchy}__year": today.year - 1})

    assert len(this_year.context["cl"].result_list) == model.objects.count() > 0
    assert list(last_year.context["cl"].result_list) == []


# --- the admin refuses to act without the staff flag -----------------------------------------


def test_a_role_without_the_staff_flag_opens_nothing(world, client):
    officer = Group.objects.get(name=PRIVACY_OFFICER)
    user = world.filed.student
    user.groups.add(officer)
    client.force_login(user)
    response = client.post(action_url("cancel", world.filed.request), {"reason": "x"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert DataRequest.objects.get(pk=world.filed.request.pk).status == "in_progress"
