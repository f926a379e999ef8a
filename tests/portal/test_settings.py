"""Settings come from the environment: a malformed value stops the process and names the
variable; the production values in docs/operations.md pass `check --deploy` without a warning.
Each case starts a fresh process, because settings are read once, at start-up."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management.utils import get_random_secret_key

MANAGE = str(settings.BASE_DIR / "manage.py")
# The variables settings.py reads that these tests set; anything else comes from the
# environment the suite runs in.
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "portal.example.jp",
    "SITE_URL": "https://portal.example.jp",
    "BEHIND_PROXY": "1",
    "DATABASE_URL": "sqlite:////tmp/portal-check-deploy.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.internal",
    "EMAIL_PORT": "587",
    "EMAIL_USE_TLS": "1",
}


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    return subprocess.run(
        [sys.executable, *args],
        env={**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("EMAIL_PORT", "abc"),
        ("DATABASE_URL", "nonsense://x"),
        ("CELERY_BROKER_URL", "http://x"),
        ("SITE_URL", "ftp://x"),
    ],
)
def test_a_malformed_value_stops_the_process_and_names_the_variable(name, value):
    result = run(["-c", "import django; django.setup()"], **{name: value})

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert name in error


def test_earlier_secret_keys_come_from_the_environment_for_a_rotation():
    printed = "import django; django.setup(); from django.conf import settings as s; "
    printed += "print(s.SECRET_KEY_FALLBACKS)"

    assert run(["-c", printed]).stdout.strip() == "[]"
    assert run(["-c", printed], SECRET_KEY_FALLBACKS=" old-1 ,old-2").stdout.strip() == (
        "['old-1', 'old-2']"
    )


def test_both_tls_and_ssl_for_email_is_refused():
    result = run(["-c", "import django; django.setup()"], EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")

    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_USE_TLS and EMAIL_USE_SSL" in result.stderr


def test_the_production_values_pass_the_deployment_checks():
    result = run(
        [MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=get_random_secret_key(),
        **PRODUCTION,
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_development_secret_key_fails_the_deployment_checks():
    result = run([MANAGE, "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)

    assert result.returncode != 0
    assert "security.W009" in result.stderr
