import pytest
from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from portal.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db


def test_it_signs_in_by_email_not_username(client):
    student = UserFactory(email="hanako@example.jp")
    response = client.post(
        reverse("account_login"), {"login": "hanako@example.jp", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(student.pk)


def test_an_unverified_email_cannot_sign_in(client):
    UserFactory(email="new@example.jp", verified=False)
    response = client.post(
        reverse("account_login"), {"login": "new@example.jp", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session


def test_signup_does_not_grant_anything_but_the_account(client):
    client.post(
        reverse("account_signup"),
        {
            "email": "a@example.jp",
            "display_name": "A",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    user = User.objects.get(email="a@example.jp")
    assert not user.is_staff
    assert not user.policy_acceptances.exists()


def test_createsuperuser_makes_a_staff_user():
    call_command(
        "createsuperuser",
        email="boss@example.jp",
        display_name="管理者",
        interactive=False,
        verbosity=0,
    )
    boss = User.objects.get(email="boss@example.jp")
    assert boss.is_staff and boss.is_superuser


def test_students_cannot_open_the_admin(client):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_changing_the_email_asks_for_the_password_again(client):
    student = UserFactory()
    accept(student, published_version())
    client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    # Outside allauth's reauthentication window, adding an address needs the password again.
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = []  # the sign-in's freshness has passed
    session.save()
    response = client.post(
        reverse("account_email"), {"action_add": "", "email": "other@example.jp"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))


def test_the_language_switcher_remembers_the_choice_on_the_account(client):
    student = UserFactory(language="ja")
    accept(student, published_version())
    client.force_login(student)
    assert '<html lang="ja">' in client.get(reverse("dashboard")).content.decode()

    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("dashboard")}
    )

    assert response.status_code == 302
    student.refresh_from_db()
    assert student.language == "en"
    assert '<html lang="en">' in client.get(reverse("dashboard")).content.decode()


def test_the_saved_language_follows_the_student_to_a_new_device(client):
    student = UserFactory(language="en")
    client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    assert client.cookies["django_language"].value == "en"


def test_the_home_page_invites_to_sign_in(client):
    html = client.get(reverse("home")).content.decode()
    assert reverse("account_login") in html
    assert reverse("account_signup") in html


def test_the_dashboard_links_to_everything_the_student_can_do(client):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    html = client.get(reverse("dashboard")).content.decode()
    for url in (
        reverse("consent:policy_list"),
        reverse("inferences:list"),
        reverse("account_email"),
        reverse("account_change_password"),
    ):
        assert url in html


def test_the_dashboard_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    # (12 since the card of what the site inferred about the student counts them.)
    with django_assert_max_num_queries(12):
        client.get(reverse("dashboard"))


def test_password_reset_mails_a_link_that_sets_a_new_password(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    import re

    student = UserFactory(email="forgot@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_reset_password"), {"email": "forgot@example.jp"})
    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+/", mailoutbox[0].body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    form_page = client.get(path, follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path,
        {"password1": "a-brand-new-pass-2026", "password2": "a-brand-new-pass-2026"},
    )

    assert response.status_code == 302
    student.refresh_from_db()
    assert student.check_password("a-brand-new-pass-2026")


def test_repeated_failed_logins_are_rate_limited(client):
    UserFactory(email="target@example.jp")
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "target@example.jp", "password": "wrong"})
    response = client.post(
        reverse("account_login"), {"login": "target@example.jp", "password": PASSWORD}
    )
    # Even the right password is refused until the limit window passes, and the form says so.
    assert response.status_code == 200
    assert "ログイン失敗が連続しています" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_language_chosen_on_the_sign_in_page_is_kept_after_signing_in(client):
    """Issue 17, item 4: signing in reset the language chosen on the sign-in page to the
    account's."""
    student = UserFactory(language="ja")
    accept(student, published_version())
    client.post(reverse("set_language"), {"language": "en", "next": "/accounts/login/"})
    response = client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    student.refresh_from_db()
    assert student.language == "en"
    assert client.get(reverse("dashboard"))["Content-Language"] == "en"


def test_the_admin_has_a_language_switcher(client):
    client.force_login(StaffFactory())
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "ja"})
    html = client.get(reverse("admin:index")).content.decode()
    assert f'action="{reverse("set_language")}"' in html and 'value="en"' in html
    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    assert 'lang="ja">日本語</button>' in client.get(reverse("admin:index")).content.decode()


def test_a_student_who_just_signed_up_by_the_emailed_link_files_without_confirm_access(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """Issue 17, item 5: asked for the password again ("Confirm access") when filing, and
    the browser's Back after filing returned to that page."""
    import re

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_signup"),
            {
                "email": "fresh@example.jp",
                "display_name": "Fresh",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    [link] = re.findall(r"https?://\S+(/accounts/confirm-email/\S+/)", mailoutbox[0].body)
    client.post(link)
    assert client.get(reverse("dashboard")).status_code in (200, 302)
    filed = client.post(reverse("disclosure:request_new"), {"kind": "deletion"})
    assert filed.status_code == 302
    assert filed["Location"].startswith("/requests/R-"), filed["Location"]


def test_filing_soon_after_a_password_sign_in_needs_no_confirm_access_but_later_does(
    client, time_machine
):
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now()
    time_machine.move_to(start, tick=False)
    student = UserFactory()
    accept(student, published_version())
    client.post(reverse("account_login"), {"login": student.email, "password": PASSWORD})
    filed = client.post(reverse("disclosure:request_new"), {"kind": "deletion"})
    assert filed["Location"].startswith("/requests/R-"), filed["Location"]
    time_machine.move_to(start + timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT + 5))
    later = client.post(reverse("disclosure:request_new"), {"kind": "cessation"})
    assert later.status_code == 302
    assert later["Location"].startswith(reverse("account_reauthenticate"))
