"""Deployment (issue 10): with docs/operations.md's production values `check --deploy --fail-level
WARNING` is clean; under those settings a real sign-in sets the session cookie Secure,
HttpOnly and SameSite=Lax, and the CSRF and language cookies Secure and SameSite=Lax; the
session key rotates on sign-in (a planted key is worthless) and sign-out destroys it.

Settings are read once, at start-up, so the production values are computed by a fresh
process from the production environment (as tests/portal/test_settings.py does); the
sign-ins then run in this process under exactly those values, over HTTPS as the load
balancer forwards it.
"""

import json

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.management.utils import get_random_secret_key
from django.test import Client
from django.urls import reverse

from portal.sessions import SessionStore
from tests.factories import PASSWORD, UserFactory
from tests.portal.test_settings import MANAGE, run

pytestmark = pytest.mark.django_db

HOST = "portal.example.jp"
# docs/operations.md's production environment, as an operator would export it.
README_PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": HOST,
    "SITE_URL": f"https://{HOST}",
    "BEHIND_PROXY": "1",
    "DATABASE_URL": "postgres://portal:secret@db.internal:5432/portal",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "CACHE_URL": "redis://redis.internal:6379/1",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.internal",
    "EMAIL_PORT": "587",
    "EMAIL_USE_TLS": "1",
    "DEFAULT_FROM_EMAIL": "privacy-portal@example.jp",
    "SUPPORT_EMAIL": "support@example.jp",
}

# What a browser is told about each cookie, and what decides how requests are seen as HTTPS.
COOKIE_SETTINGS = [
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "CSRF_USE_SESSIONS",
    "LANGUAGE_COOKIE_SECURE",
    "LANGUAGE_COOKIE_HTTPONLY",
    "LANGUAGE_COOKIE_SAMESITE",
]

_PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {COOKIE_SETTINGS!r}}}))"
)


def test_the_readmes_production_values_pass_the_deployment_checks_without_a_warning():
    result = run(
        [MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=get_random_secret_key(),
        **README_PRODUCTION,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (1 silenced)."
    assert "WARNING" not in result.stderr and "?:" not in result.stderr


@pytest.mark.parametrize("backend", ["console", "filebased"])
def test_a_production_that_would_write_emails_out_fails_the_deployment_checks(backend):
    result = run(
        [MANAGE, "check", "--deploy", "--fail-level", "ERROR"],
        SECRET_KEY=get_random_secret_key(),
        **{
            **README_PRODUCTION,
            "EMAIL_BACKEND": f"django.core.mail.backends.{backend}.EmailBackend",
        },
    )
    assert result.returncode != 0
    assert "portal.E001" in result.stderr and "EMAIL_BACKEND" in result.stderr


@pytest.fixture(scope="module")
def production_values() -> dict:
    result = run(["-c", _PRINT_SETTINGS], SECRET_KEY=get_random_secret_key(), **README_PRODUCTION)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.fixture
def production(settings, production_values):
    for name, value in production_values.items():
        setattr(settings, name, value)
    return production_values


def test_production_makes_every_cookie_secure_and_same_site(production):
    assert production["SESSION_COOKIE_SECURE"] and production["SESSION_COOKIE_HTTPONLY"]
    assert production["CSRF_COOKIE_SECURE"] and production["LANGUAGE_COOKIE_SECURE"]
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert production["LANGUAGE_COOKIE_SAMESITE"] == "Lax"
    assert production["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert production["SECURE_SSL_REDIRECT"]


class Browser(Client):
    """A browser reaching the portal through the load balancer over HTTPS, with CSRF
    enforced as in production."""

    def __init__(self):
        super().__init__(
            enforce_csrf_checks=True,
            HTTP_HOST=HOST,
            HTTP_X_FORWARDED_PROTO="https",
            HTTP_ORIGIN=f"https://{HOST}",
        )

    def csrf_token(self) -> str:
        return self.cookies[settings.CSRF_COOKIE_NAME].value

    def sign_in(self, email: str):
        self.get(reverse("account_login"))
        return self.post(
            reverse("account_login"),
            {"login": email, "password": PASSWORD, "csrfmiddlewaretoken": self.csrf_token()},
        )

    def session_key(self) -> str:
        return self.cookies[settings.SESSION_COOKIE_NAME].value


def _assert_flags(morsel, *, httponly: bool):
    assert morsel["secure"] is True, morsel.OutputString()
    assert morsel["samesite"] == "Lax", morsel.OutputString()
    assert bool(morsel["httponly"]) is httponly, morsel.OutputString()


def _dashboard_as(session_key: str):
    """What a browser holding only this session cookie is shown."""
    browser = Browser()
    browser.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return browser.get(reverse("dashboard"))


def test_the_login_page_over_plain_http_is_redirected_to_https(production):
    response = Client(HTTP_HOST=HOST).get(reverse("account_login"))
    assert response.status_code == 301
    assert response["Location"] == f"https://{HOST}{reverse('account_login')}"


def test_a_real_sign_in_sets_the_session_and_csrf_cookies_secure_httponly_and_same_site(
    production,
):
    student = UserFactory()
    browser = Browser()

    page = browser.get(reverse("account_login"))
    _assert_flags(page.cookies[settings.CSRF_COOKIE_NAME], httponly=False)
    response = browser.sign_in(student.email)

    assert response.status_code == 302, response.content.decode()[:1000]
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    _assert_flags(session, httponly=True)
    assert session["max-age"] == ""  # no "remember me": gone when the browser closes
    # Django hands a new CSRF token on sign-in; the new cookie keeps the same flags.
    _assert_flags(response.cookies[settings.CSRF_COOKIE_NAME], httponly=False)
    assert browser.get(reverse("dashboard")).status_code == 200


def test_the_language_cookie_is_secure_httponly_and_same_site(production):
    browser = Browser()
    browser.get(reverse("account_login"))
    response = browser.post(
        reverse("set_language"),
        {"language": "en", "next": "/", "csrfmiddlewaretoken": browser.csrf_token()},
    )
    assert response.status_code == 302
    _assert_flags(response.cookies[settings.LANGUAGE_COOKIE_NAME], httponly=True)


def test_a_session_key_planted_before_sign_in_is_replaced_and_worthless_after_it(production):
    """Session fixation: an attacker who got a victim's browser to use a session key they
    know must not share the victim's signed-in session."""
    student = UserFactory()
    planted = SessionStore()
    planted["attacker"] = "knows this key"
    planted.create()
    browser = Browser()
    browser.cookies[settings.SESSION_COOKIE_NAME] = planted.session_key

    assert browser.sign_in(student.email).status_code == 302

    assert browser.session_key() != planted.session_key
    assert not SessionStore().exists(planted.session_key)
    assert SessionStore(session_key=browser.session_key()).load()[SESSION_KEY] == str(student.pk)
    replayed = _dashboard_as(planted.session_key)
    assert replayed.status_code == 302
    assert replayed["Location"].startswith(reverse("account_login"))


def test_signing_out_destroys_the_session_so_a_copied_cookie_no_longer_works(production):
    student = UserFactory()
    browser = Browser()
    browser.sign_in(student.email)
    signed_in = browser.session_key()
    assert _dashboard_as(signed_in).status_code == 200  # a stolen copy works until sign-out

    response = browser.post(
        reverse("account_logout"), {"csrfmiddlewaretoken": browser.csrf_token()}
    )

    assert response.status_code == 302
    assert not SessionStore().exists(signed_in)
    copied = _dashboard_as(signed_in)
    assert copied.status_code == 302
    assert copied["Location"].startswith(reverse("account_login"))
