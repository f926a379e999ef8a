"""A student closes their account (issue 17, item 6): re-authenticated, in both languages;
sign-in, profile, sessions, second factors and the job-site link go at once; consents are
withdrawn; a deletion request to every company can go in the same step; a confirmation is
emailed before the address goes; signing in afterwards says nothing about the account; staff
see the closure in the audit log, not the erased data; the retention job removes the rest."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from backoffice.retention import closed_accounts_expire
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Provision
from disclosure.models import DataRequest
from portal.models import EmailMessage, User
from tests.disclosure.test_dispatch import student_with_recipients
from tests.factories import PASSWORD, UserFactory, totp_activate

pytestmark = pytest.mark.django_db

CLOSE = reverse("disclosure:account_close")


@pytest.fixture
def student():
    student, employers = student_with_recipients(("ja", "en"), email="closing@example.jp")
    student.set_password(PASSWORD)
    student.save(update_fields=["password"])
    SocialAccount.objects.create(user=student, provider="jobsite", uid="site-42")
    return student


def signed_in(client, student) -> Client:
    response = client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_the_page_says_what_goes_and_what_stays_in_both_languages(client, student):
    client.force_login(student)
    for language, words in (("en", "What goes at once"), ("ja", "すぐに消えるもの")):
        client.cookies.load({"django_language": language})
        html = client.get(CLOSE).content.decode()
        assert words in html
        assert 'name="delete_at_companies"' in html  # two companies received the data


def test_closing_needs_a_recent_re_authentication(client, student):
    client.force_login(student)
    response = client.post(CLOSE, {"understood": "on"})
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert User.objects.get(pk=student.pk).is_active


def test_closing_unticked_changes_nothing_and_says_why(client, student):
    signed_in(client, student)
    response = client.post(CLOSE, {})
    assert response.status_code == 200
    assert "Tick this to close your account." in response.content.decode() or (
        "error-summary" in response.content.decode()
    )
    assert User.objects.get(pk=student.pk).closed_at is None


def test_closing_takes_every_way_in_and_keeps_what_the_law_asks_without_name_or_address(
    client, student, django_capture_on_commit_callbacks
):
    elsewhere = Client()
    elsewhere.force_login(student)
    assert elsewhere.get(reverse("dashboard")).status_code == 200
    provisions = Provision.objects.filter(student=student).count()
    signed_in(client, student)
    totp_activate(student)  # a second factor set up while signed in
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(CLOSE, {"understood": "on", "delete_at_companies": "on"})
    assert response.status_code == 302 and response["Location"] == reverse("home")

    closed = User.objects.get(pk=student.pk)
    assert closed.closed_at and not closed.is_active and not closed.has_usable_password()
    assert closed.display_name == "" and "closing@example.jp" != closed.email
    assert not EmailAddress.objects.filter(user=closed).exists()
    assert not SocialAccount.objects.filter(user=closed).exists()
    assert not Authenticator.objects.filter(user=closed).exists()
    assert not Consent.objects.filter(student=closed, granted=True).exists()
    # Kept: the provision records, and the deletion request sent to both companies.
    assert Provision.objects.filter(student=closed).count() == provisions
    filed = DataRequest.objects.get(student=closed, kind="deletion")
    assert filed.tasks.count() == 2
    # Signed out here and everywhere else.
    assert client.get(reverse("dashboard")).status_code == 302
    assert elsewhere.get(reverse("dashboard")).status_code == 302
    # The confirmation went to the address before it was erased.
    confirmation = EmailMessage.objects.get(kind="account_closed")
    assert confirmation.to == "closing@example.jp"
    assert filed.reference in confirmation.body_text
    # Staff see that it happened, not what was erased.
    [entry] = AuditEntry.objects.filter(name="portal.account_close")
    assert "closing@example.jp" not in str(entry.__dict__)
    assert entry.changes == {"deletion_request": filed.reference}


def test_signing_in_afterwards_answers_as_for_an_address_that_never_had_an_account(
    client, student, django_capture_on_commit_callbacks
):
    signed_in(client, student)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CLOSE, {"understood": "on"})
    closed = Client().post(
        reverse("account_login"), {"login": "closing@example.jp", "password": PASSWORD}
    )
    never = Client().post(
        reverse("account_login"), {"login": "never-was@example.jp", "password": PASSWORD}
    )
    assert closed.status_code == never.status_code == 200
    strip = lambda r, a: r.content.decode().replace(a, "")  # noqa: E731
    assert strip(closed, "closing@example.jp").count("errorlist") == strip(
        never, "never-was@example.jp"
    ).count("errorlist")
    assert "_auth_user_id" not in Client().session


def test_no_more_emails_reach_the_erased_address(
    client, student, django_capture_on_commit_callbacks
):
    from disclosure.services import recipient_task_answer

    signed_in(client, student)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CLOSE, {"understood": "on", "delete_at_companies": "on"})
    filed = DataRequest.objects.get(student_id=student.pk)
    before = EmailMessage.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        for task in filed.tasks.all():
            recipient_task_answer(task=task, answer="held_none", answered_by="HR")
    filed.refresh_from_db()
    assert filed.status == "completed"
    assert not EmailMessage.objects.filter(pk__gt=0, to__endswith=".invalid").exists()
    assert EmailMessage.objects.count() == before  # no "answered", no "completed" mail


def test_the_emails_to_the_closed_address_keep_what_they_were_but_not_the_address(
    client, student, django_capture_on_commit_callbacks
):
    from backoffice.retention import retention_run

    sent_before = EmailMessage.objects.filter(to="closing@example.jp")
    sent_before.update(status="sent")  # the consents' receipts, sent long ago
    assert sent_before.exists()
    kinds = sorted(sent_before.values_list("kind", flat=True))
    signed_in(client, student)
    # Closed with the broker away: the confirmation and the request's receipt still to go.
    with django_capture_on_commit_callbacks(execute=False):
        client.post(CLOSE, {"understood": "on", "delete_at_companies": "on"})
    to_go = EmailMessage.objects.filter(to="closing@example.jp")
    assert set(to_go.values_list("status", flat=True)) == {"queued"}
    assert "account_closed" in set(to_go.values_list("kind", flat=True))
    # What was sent before keeps its kind and times, not the address or the text.
    erased = EmailMessage.objects.filter(to__endswith="@closed.invalid", status="sent")
    assert sorted(erased.values_list("kind", flat=True)) == kinds
    assert set(erased.values_list("body_text", "body_html")) == {("", "")}

    from portal.tasks import email_send

    for message in to_go:
        email_send(message.pk)  # the broker is back: they go to the address
    assert not EmailMessage.objects.filter(status="queued").exists()
    retention_run()
    assert not EmailMessage.objects.filter(to__iexact="closing@example.jp").exists()
    for row in EmailMessage.objects.values():
        assert "closing@example.jp" not in str(row), row


def test_the_retention_job_removes_the_rest_when_its_period_ends(
    client, student, django_capture_on_commit_callbacks
):
    from disclosure.services import recipient_task_answer

    signed_in(client, student)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(CLOSE, {"understood": "on", "delete_at_companies": "on"})
        for task in DataRequest.objects.get(student_id=student.pk).tasks.all():
            recipient_task_answer(task=task, answer="deleted", answered_by="HR", statement="ok")
    other = UserFactory()
    period = timedelta(days=settings.RETENTION_CLOSED_ACCOUNT_DAYS)
    closed_at = User.objects.get(pk=student.pk).closed_at

    assert closed_accounts_expire(now=closed_at + period) == 0  # at the period, it stays
    assert closed_accounts_expire(now=closed_at + period + timedelta(seconds=1)) == 1
    assert not User.objects.filter(pk=student.pk).exists()
    for model in (ConsentEvent, PolicyAcceptance, Provision, DataRequest):
        assert not model.objects.filter(student_id=student.pk).exists(), model
    assert User.objects.filter(pk=other.pk).exists()
    assert closed_accounts_expire(now=timezone.now() + 2 * period) == 0  # nothing twice
