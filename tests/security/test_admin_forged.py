"""Forged admin POSTs (issue 10): every Privacy-officer-only permission, forged by POST as
Support with a valid CSRF token, answers 403 and changes nothing.

How this relates to tests/backoffice/test_roles.py: that file tries every permission of the
spec with every role, with the test client's CSRF checks off, and compares the one field
each action changes. This file is the attacker's version of its officer-only half, generated
from the same spec (`ROLES[PRIVACY_OFFICER] - ROLES[SUPPORT]`): the client enforces CSRF and
sends a real token, so the 403 can only come from the permission check (and the same POST by
an officer, under the same CSRF checks, succeeds); reads become POSTs too (a report, a list,
the audit log's verify button); and "nothing changed" is a snapshot of every affected table
and of the whole audit log. It reuses test_roles.py's form-building cases, so the real form
data is defined once. The admin's own URLs are also read from the URLconf: one the table
below does not know fails by name.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from backoffice.roles import PRIVACY_OFFICER, ROLES, SUPPORT
from consent.models import ApiClient, ConsentEvent, PolicyVersion
from disclosure.models import (
    AnswerLink,
    DataRequest,
    DataSource,
    RecipientTask,
    RequestEvent,
    SourceTask,
)
from inferences.models import InferenceDispute, InferenceModel
from portal.models import EmailMessage, Employer, PrivacyContact
from tests.backoffice.conftest import World
from tests.backoffice.test_roles import CASES
from tests.factories import StaffFactory
from tests.security.test_idor import all_routes

pytestmark = pytest.mark.django_db

OFFICER_ONLY = sorted(ROLES[PRIVACY_OFFICER] - ROLES[SUPPORT])

# Every table an officer-only action writes to (the audit log is counted and compared whole).
AFFECTED = [
    PolicyVersion,
    Employer,
    PrivacyContact,
    DataRequest,
    RecipientTask,
    SourceTask,
    AnswerLink,
    RequestEvent,
    ApiClient,
    ConsentEvent,
    EmailMessage,
    Authenticator,
    InferenceModel,
    InferenceDispute,
    AuditEntry,
]

_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


class CsrfClient(Client):
    """A browser with a signed-in session: CSRF is enforced as in production, and every
    POST carries the token the admin handed this session, as a forger with a Support
    account would have it."""

    def __init__(self, user):
        super().__init__(enforce_csrf_checks=True)
        self.force_login(user)
        index = self.get(reverse("admin:index"))
        assert index.status_code == 200
        self.token = _TOKEN.search(index.content).group(1).decode()

    def post(self, path, data=None, **extra):
        return super().post(path, {**(data or {}), "csrfmiddlewaretoken": self.token}, **extra)


@dataclass(frozen=True)
class Forged:
    """`perform(admin_client, client, world)` makes the POST (an officer's real form data);
    `urls` are the admin URL names it reaches, to tie the table to the URLconf."""

    perform: Callable
    urls: tuple[str, ...]


def _post_to(name: str, args: Callable = lambda w: [], data: Callable = lambda w: {}):
    return lambda a, c, w: c.post(reverse(f"admin:{name}", args=args(w)), data(w))


def _impact_report(a, c, w):
    pk = w.reconsent_purpose.pk
    page = c.post(reverse("admin:consent_purpose_impact", args=[pk]))
    csv = c.post(reverse("admin:consent_purpose_impact_csv", args=[pk, "unlisted"]))
    assert page.status_code == csv.status_code, (page.status_code, csv.status_code)
    return page


def _failed_source_task(world) -> SourceTask:
    """A data source whose call failed, on the world's open request (made once)."""
    source, _ = DataSource.objects.get_or_create(
        name="応募管理システム", defaults={"holds": "応募履歴", "endpoint": "https://src.example/"}
    )
    task, _ = SourceTask.objects.get_or_create(
        request=world.filed.request,
        source=source,
        defaults={"status": SourceTask.Status.FAILED, "last_error": "HTTP 503"},
    )
    return task


def _close_company_and_source(a, c, w):
    """Closing a company's task and closing a data source's task: one permission, both."""
    company = CASES["disclosure.close_task"].perform(a, c, w)
    task = _failed_source_task(w)
    url = reverse("admin:disclosure_datarequest_source_close", args=[task.request_id, task.pk])
    source = c.post(url, {"reason": "the system was retired"})
    assert company.status_code == source.status_code, (company.status_code, source.status_code)
    return source


def _webhook_off_and_new_secret(a, c, w):
    """Changing a company's webhook: switching it off, and making it a new signing secret."""
    from tests.backoffice.test_roles import _webhook

    changed = CASES["disclosure.change_webhook"].perform(a, c, w)
    url = reverse("admin:disclosure_webhook_new_secret", args=[_webhook(w).pk])
    renewed = c.post(url)
    assert (changed.status_code == 403) == (renewed.status_code == 403), (changed, renewed)
    return renewed if renewed.status_code == 403 else changed


def _from_roles(dotted: str, *urls: str) -> Forged:
    return Forged(CASES[dotted].perform, urls)


FORGED: dict[str, Forged] = {
    "consent.add_policyversion": _from_roles(
        "consent.add_policyversion", "consent_policyversion_add"
    ),
    "consent.change_policyversion": _from_roles(
        "consent.change_policyversion", "consent_policyversion_change"
    ),
    "consent.publish_policyversion": _from_roles(
        "consent.publish_policyversion", "consent_policyversion_publish"
    ),
    "portal.add_employer": _from_roles("portal.add_employer", "portal_employer_add"),
    "portal.change_employer": _from_roles("portal.change_employer", "portal_employer_change"),
    "portal.add_privacycontact": _from_roles("portal.add_privacycontact", "portal_employer_change"),
    "portal.change_privacycontact": _from_roles(
        "portal.change_privacycontact", "portal_employer_change"
    ),
    "portal.delete_privacycontact": _from_roles(
        "portal.delete_privacycontact", "portal_employer_change"
    ),
    "disclosure.cancel_request": _from_roles(
        "disclosure.cancel_request", "disclosure_datarequest_cancel"
    ),
    "disclosure.change_webhook": Forged(
        _webhook_off_and_new_secret, ("disclosure_webhook_change", "disclosure_webhook_new_secret")
    ),
    "disclosure.close_task": Forged(
        _close_company_and_source,
        ("disclosure_datarequest_task_close", "disclosure_datarequest_source_close"),
    ),
    "consent.run_impact_report": Forged(
        _impact_report, ("consent_purpose_impact", "consent_purpose_impact_csv")
    ),
    "consent.send_reconsent_mailing": _from_roles(
        "consent.send_reconsent_mailing", "consent_purpose_impact_request_review"
    ),
    # Reading the keys' list: a POST to it (a search, or an action with nothing chosen).
    "consent.view_apiclient": Forged(
        _post_to("consent_apiclient_changelist", data=lambda w: {"q": w.api_client.name}),
        ("consent_apiclient_changelist",),
    ),
    "consent.add_apiclient": _from_roles("consent.add_apiclient", "consent_apiclient_add"),
    "consent.change_apiclient": _from_roles(
        "consent.change_apiclient", "consent_apiclient_changelist"
    ),
    "portal.reset_second_factor": _from_roles(
        "portal.reset_second_factor", "portal_user_reset_second_factor"
    ),
    "inferences.add_inferencemodel": _from_roles(
        "inferences.add_inferencemodel", "inferences_inferencemodel_add"
    ),
    "inferences.change_inferencemodel": _from_roles(
        "inferences.change_inferencemodel", "inferences_inferencemodel_change"
    ),
    "inferences.activate_inferencemodel": _from_roles(
        "inferences.activate_inferencemodel", "inferences_inferencemodel_activate"
    ),
    # The audit log's "verify the chain" button.
    "audit.view_auditentry": Forged(
        _post_to("audit_auditentry_verify"), ("audit_auditentry_verify",)
    ),
    # Staff looks at students' data, per staff member (it only reads).
    "audit.view_staffread": Forged(
        _post_to("audit_staffread_per_staff"), ("audit_staffread_per_staff",)
    ),
}

# The admin's own views (beyond Django's list/add/change/delete/history of each model): the
# permission each one checks. Those Support lacks must be in FORGED.
ADMIN_VIEWS: dict[str, str | None] = {
    "audit_auditentry_verify": "audit.view_auditentry",
    "audit_staffread_per_staff": "audit.view_staffread",
    "consent_purpose_impact": "consent.run_impact_report",
    "consent_purpose_impact_csv": "consent.run_impact_report",
    "consent_purpose_impact_request_review": "consent.send_reconsent_mailing",
    "consent_policyversion_preview": "consent.view_policyversion",
    "consent_policyversion_publish": "consent.publish_policyversion",
    "consent_consentevent_record": "consent.add_consentevent",
    "disclosure_datarequest_extend": "disclosure.extend_due_date",
    "disclosure_datarequest_cancel": "disclosure.cancel_request",
    "disclosure_datarequest_task_resend": "disclosure.resend_answer_link",
    "disclosure_datarequest_task_answer": "disclosure.record_answer",
    "disclosure_datarequest_task_close": "disclosure.close_task",
    "disclosure_datarequest_source_recall": "disclosure.resend_answer_link",
    "disclosure_datarequest_source_close": "disclosure.close_task",
    "portal_employer_resend_links": "disclosure.resend_answer_link",
    # A data source's new signing secret: superusers only, no role may (tested in
    # tests/security/test_secrets_at_rest.py).
    "disclosure_datasource_new_secret": "superuser",
    # A company webhook's new signing secret: whoever may change webhooks (Privacy officers).
    "disclosure_webhook_new_secret": "disclosure.change_webhook",
    "portal_user_reset_second_factor": "portal.reset_second_factor",
    "inferences_inferencemodel_activate": "inferences.activate_inferencemodel",
    "inferences_inferencedispute_answer": "inferences.answer_inferencedispute",
    # The second-factor gate's explanation: any staff member, before they have a factor.
    "mfa_required": None,
    # Django's site views: any staff member, nothing role-specific.
    "index": None,
    "login": None,
    "logout": None,
    "password_change_done": None,
    "autocomplete": None,  # checks the view permission of the model asked for
    "jsi18n": None,
    "view_on_site": None,
    "app_list": None,
}
# (Django checks those itself; `password_change` ends like them and needs no role.)
_MODEL_VIEWS = ("_changelist", "_add", "_change", "_delete", "_history")


def _custom_admin_views() -> list[str]:
    names = []
    for route in all_routes():
        if route.namespace != "admin" or route.name == route.route:
            continue  # unnamed: the admin's redirects to a change page, and its catch-all
        name = route.name.split(":", 1)[1]
        if not name.endswith(_MODEL_VIEWS):
            names.append(name)
    return names


def test_every_admin_view_of_the_urlconf_is_classified_by_the_permission_it_checks():
    unknown = [name for name in _custom_admin_views() if name not in ADMIN_VIEWS]
    assert not unknown, (
        f"add these admin views to ADMIN_VIEWS (and FORGED if officer-only): {unknown}"
    )
    gone = set(ADMIN_VIEWS) - set(_custom_admin_views())
    assert not gone, f"ADMIN_VIEWS names views that no longer exist: {gone}"


def test_every_officer_only_permission_and_admin_view_has_a_forged_post():
    assert len(OFFICER_ONLY) >= 16  # the spec has not shrunk by accident
    missing = [dotted for dotted in OFFICER_ONLY if dotted not in FORGED]
    assert not missing, f"officer-only permissions with no forged POST: {missing}"
    assert set(FORGED) == set(OFFICER_ONLY), "FORGED names a permission Support holds"
    forged_urls = {url for case in FORGED.values() for url in case.urls}
    officer_views = [n for n, p in ADMIN_VIEWS.items() if p in OFFICER_ONLY]
    assert not [n for n in officer_views if n not in forged_urls]


def _snapshot() -> dict[str, list[dict]]:
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in AFFECTED}


def _staff(role: str):
    user = StaffFactory(is_superuser=False)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    return World(django_capture_on_commit_callbacks)


@pytest.fixture
def admin_client():
    """A superuser's client, which reads the officer's form to post back (no CSRF needed
    for reading)."""
    client = Client()
    client.force_login(StaffFactory())
    return client


def _is_csrf_failure(response) -> bool:
    return b"CSRF" in response.content


@pytest.mark.parametrize("dotted", OFFICER_ONLY)
def test_an_officer_only_action_forged_by_post_as_support_answers_403_and_changes_nothing(
    world, admin_client, dotted, django_capture_on_commit_callbacks
):
    forged = FORGED[dotted]
    support = CsrfClient(_staff(SUPPORT))
    forged.perform(admin_client, Client(), world)  # builds the world's rows the form needs
    before = _snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        response = forged.perform(admin_client, support, world)

    assert response.status_code == 403, (dotted, response.status_code)
    assert not _is_csrf_failure(response)  # refused by the permission check, not by CSRF
    assert _snapshot() == before


# The forged POSTs that read rather than write: for an officer they change no table.
READS = {
    "consent.run_impact_report",
    "consent.view_apiclient",
    "audit.view_auditentry",
    "audit.view_staffread",
}


@pytest.mark.parametrize("dotted", OFFICER_ONLY)
def test_the_same_post_by_a_privacy_officer_with_csrf_enforced_does_the_action(
    world, admin_client, dotted, django_capture_on_commit_callbacks
):
    """The control: the forged form data is real (the officer's POST is not refused by CSRF
    nor by the form, and a writing action writes and is audited)."""
    forged = FORGED[dotted]
    officer = CsrfClient(_staff(PRIVACY_OFFICER))
    forged.perform(admin_client, Client(), world)  # builds the world's rows the form needs
    before = _snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        response = forged.perform(admin_client, officer, world)
    assert response.status_code in (200, 302), (dotted, response.content.decode()[:1000])
    assert not _is_csrf_failure(response)
    after = _snapshot()
    if dotted in READS:
        assert {k: v for k, v in after.items() if k != "AuditEntry"} == {
            k: v for k, v in before.items() if k != "AuditEntry"
        }
    else:
        assert after != before, dotted
        assert len(after["AuditEntry"]) > len(before["AuditEntry"]), dotted
