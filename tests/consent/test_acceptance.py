import re

import pytest
from django.conf import settings
from django.urls import reverse

from consent.models import PolicyAcceptance, Screen
from tests.factories import PASSWORD, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db


def _accept_form(response):
    html = response.content.decode()
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)
        for name in ("version", "language", "text_sha256", "screen")
    }


def test_a_new_student_is_sent_to_the_policy_before_the_dashboard(client):
    published_version()
    client.force_login(UserFactory())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("consent:accept"))


def test_the_acceptance_records_screen_language_hash_ip_and_agent(client):
    version = published_version()
    student = UserFactory()
    client.force_login(student)
    page = client.get(reverse("consent:accept"))
    assert page.status_code == 200
    assert version.text_ja in page.content.decode() if hasattr(version, "text_ja") else True
    form = _accept_form(page)
    assert form["screen"] == Screen.SIGNUP

    response = client.post(
        reverse("consent:accept"),
        {**form, "confirm": "on"},
        HTTP_USER_AGENT="TestBrowser/1.0",
        REMOTE_ADDR="203.0.113.7",
    )

    assert response.status_code == 302
    acceptance = PolicyAcceptance.objects.get(student=student)
    assert acceptance.version == version
    assert acceptance.screen == Screen.SIGNUP
    assert acceptance.language == "ja"
    assert acceptance.text_sha256 == version.text_sha256_ja == version.text("ja").sha256
    assert acceptance.ip_address == "203.0.113.7"
    assert acceptance.user_agent == "TestBrowser/1.0"


def test_the_accept_box_is_not_ticked_and_must_be_ticked(client):
    published_version()
    student = UserFactory()
    client.force_login(student)
    page = client.get(reverse("consent:accept"))
    checkbox = re.search(r'<input type="checkbox" name="confirm"[^>]*>', page.content.decode())
    assert checkbox and "checked" not in checkbox.group(0)

    response = client.post(reverse("consent:accept"), _accept_form(page))

    assert response.status_code == 200
    assert "Tick the box" in response.content.decode() or "チェック" in response.content.decode()
    assert not PolicyAcceptance.objects.filter(student=student).exists()


def test_a_hash_that_is_not_the_published_one_is_refused(client):
    published_version()
    student = UserFactory()
    client.force_login(student)
    form = _accept_form(client.get(reverse("consent:accept")))

    response = client.post(
        reverse("consent:accept"), {**form, "text_sha256": "0" * 64, "confirm": "on"}
    )

    assert response.status_code == 200
    assert not PolicyAcceptance.objects.filter(student=student).exists()


def test_accepting_twice_records_one_acceptance():
    version = published_version()
    student = UserFactory()
    first = accept(student, version)
    second = accept(student, version)
    assert first.pk == second.pk
    assert PolicyAcceptance.objects.filter(student=student).count() == 1


def test_an_accepted_student_reaches_the_dashboard(client):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    assert client.get(reverse("dashboard")).status_code == 200


def test_signup_then_verification_then_acceptance(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    version = published_version()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_signup"),
            {
                "email": "new.student@example.jp",
                "display_name": "新入 生",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+/", mailoutbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    confirm_page = client.get("/" + path)
    assert confirm_page.status_code == 200
    response = client.post("/" + path)
    assert response.status_code == 302
    response = client.get(response["Location"], follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("consent:accept"))

    form = _accept_form(response)
    client.post(reverse("consent:accept"), {**form, "confirm": "on"})

    acceptance = PolicyAcceptance.objects.get(student__email="new.student@example.jp")
    assert acceptance.screen == Screen.SIGNUP
    assert acceptance.version == version
    assert acceptance.text_sha256 == version.stored_sha256("ja")
    assert acceptance.student.display_name == "新入 生"


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (CI's second pass): SQLite's shared in-memory test database "
    "answers concurrent writers with 'table is locked' instead of waiting",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_acceptances_of_one_version_leave_one_row():
    """Two tabs posting at once: the database constraint, not luck, keeps one row."""
    import threading

    from django.db import connection

    version = published_version()
    student = UserFactory()
    results, errors = [], []
    barrier = threading.Barrier(4)

    def submit():
        try:
            barrier.wait()
            results.append(accept(student, version).pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert PolicyAcceptance.objects.filter(student=student).count() == 1
    assert len(set(results)) == 1
