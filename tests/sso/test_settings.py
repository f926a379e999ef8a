"""OIDC_* from the environment: unset means no SSO; a half or unsafe configuration stops the
process; a full one makes allauth's settings-based app with PKCE (each case a fresh process,
as in tests/portal/test_settings.py)."""

import json

import pytest

from tests.portal.test_settings import run

SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'apps': s.SOCIALACCOUNT_PROVIDERS['openid_connect']['APPS'], "
    "'pkce': s.SOCIALACCOUNT_PROVIDERS['openid_connect']['OAUTH_PKCE_ENABLED'], "
    "'form_action': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action'], "
    "'only': s.SOCIALACCOUNT_ONLY}))"
)
UNSET = {"OIDC_ISSUER": "", "OIDC_CLIENT_ID": "", "OIDC_CLIENT_SECRET": "", "OIDC_NAME": ""}


def shown(**env) -> dict:
    result = run(["-c", SHOW], **{**UNSET, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_unset_there_is_no_provider_and_email_sign_up_stays():
    assert shown() == {"apps": [], "pkce": True, "form_action": ["'self'"], "only": False}


def test_set_it_is_one_settings_app_with_pkce_and_the_site_s_origin_may_take_the_form():
    config = shown(
        OIDC_ISSUER="https://id.job-site.example.jp/oidc/",
        OIDC_CLIENT_ID="portal",
        OIDC_CLIENT_SECRET="s3cret",
    )
    assert config["apps"] == [
        {
            "provider_id": "jobsite",
            "name": "求人サイト / Job site",
            "client_id": "portal",
            "secret": "s3cret",
            "settings": {
                "server_url": "https://id.job-site.example.jp/oidc",
                "oauth_pkce_enabled": True,
            },
        }
    ]
    assert config["form_action"] == ["'self'", "https://id.job-site.example.jp"]


def test_the_button_label_comes_from_oidc_name():
    config = shown(
        OIDC_ISSUER="https://id.example.jp",
        OIDC_CLIENT_ID="p",
        OIDC_CLIENT_SECRET="s",
        OIDC_NAME="就活ナビ",
    )
    assert config["apps"][0]["name"] == "就活ナビ"


@pytest.mark.parametrize(
    "env",
    [
        {"OIDC_ISSUER": "https://id.example.jp"},
        {"OIDC_ISSUER": "https://id.example.jp", "OIDC_CLIENT_ID": "p"},
        # Plain http only to a provider on this machine.
        {"OIDC_ISSUER": "http://id.example.jp", "OIDC_CLIENT_ID": "p", "OIDC_CLIENT_SECRET": "s"},
        {"OIDC_ISSUER": "ftp://id.example.jp", "OIDC_CLIENT_ID": "p", "OIDC_CLIENT_SECRET": "s"},
    ],
)
def test_an_incomplete_or_unsafe_configuration_stops_the_process(env):
    result = run(["-c", "import django; django.setup()"], **{**UNSET, **env})

    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert "OIDC_ISSUER" in error


def test_http_on_loopback_is_allowed_for_a_local_provider():
    config = shown(
        OIDC_ISSUER="http://127.0.0.1:9000/o", OIDC_CLIENT_ID="p", OIDC_CLIENT_SECRET="s"
    )
    assert config["apps"][0]["settings"]["server_url"] == "http://127.0.0.1:9000/o"
