"""The stand-in job site (tests/sso/provider/), for tests/sso and tests/e2e: django-oauth-toolkit's OpenID Connect
provider, started once per test session as a subprocess on a free loopback port, with an
RSA key made for the run and its own SQLite file. The portal is pointed at it as it would be
at the real site: OIDC_ISSUER's discovery document, token endpoint and userinfo are real
HTTP calls the portal makes itself."""

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings

from tests.ports import free_port

CLIENT_ID = "student-data-portal"
CLIENT_SECRET = secrets.token_urlsafe(32)
PROVIDER_ID = "jobsite"
PASSWORD = "job-site-pass-2026"
CALLBACK = f"/accounts/oidc/{PROVIDER_ID}/login/callback/"


@dataclass
class Provider:
    url: str
    issuer: str
    token: str

    def control(self, path: str, payload: dict | None = None) -> dict:
        headers = {"X-Control-Token": self.token}
        if payload is None:
            response = requests.get(f"{self.url}/control/{path}", headers=headers, timeout=10)
        else:
            response = requests.post(
                f"{self.url}/control/{path}", json=payload, headers=headers, timeout=10
            )
        response.raise_for_status()
        return response.json()

    def user(self, username: str, *, email: str, name: str = "", email_verified=True) -> str:
        """Make or change a user at the site; returns its subject id."""
        data = {"username": username, "email": email, "name": name, "password": PASSWORD}
        return self.control("user/", {**data, "email_verified": email_verified})["sub"]

    def register_client(self, *origins: str) -> None:
        self.control(
            "client/",
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [origin + CALLBACK for origin in origins],
            },
        )

    def browser_session(self, username: str) -> requests.Session:
        """A browser at the job site, signed in there as `username`."""
        session = requests.Session()
        session.get(f"{self.url}/login/", timeout=10).raise_for_status()
        response = session.post(
            f"{self.url}/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": "/",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 302, "the job site refused the test user's password"
        return session


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("job-site")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    token = secrets.token_urlsafe(16)
    env = {
        # Only what the provider needs: none of the portal's DATABASE_URL and the like.
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(django_settings.BASE_DIR),
        "DJANGO_SETTINGS_MODULE": "tests.sso.provider.settings",
        "PROVIDER_DB": str(workdir / "provider.sqlite3"),
        "PROVIDER_ISSUER": f"{url}/o",
        "PROVIDER_RSA_KEY": pem,
        "PROVIDER_CONTROL_TOKEN": token,
    }
    django = [sys.executable, "-m", "django"]
    subprocess.run(
        [*django, "migrate", "--run-syncdb", "-v", "0"],
        env=env,
        cwd=django_settings.BASE_DIR,
        check=True,
    )
    log = (workdir / "provider.log").open("w")
    server = subprocess.Popen(
        [*django, "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        env=env,
        cwd=django_settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    provider = Provider(url=url, issuer=f"{url}/o", token=token)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # (the first answer can take seconds on a busy machine: it imports the views)
                requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the test OIDC provider did not start:\n" + Path(log.name).read_text()
                    ) from None
                time.sleep(0.1)
        provider.register_client("http://testserver")
        yield provider
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def callback_path(location: str) -> str:
    """The portal's callback, from where the job site redirected the browser."""
    parts = urlsplit(location)
    assert parts.path == CALLBACK, location
    return f"{parts.path}?{parts.query}"


def portal_settings_for(provider: Provider) -> dict:
    """SOCIALACCOUNT_PROVIDERS as settings.py makes it from OIDC_ISSUER and friends."""
    return {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "VERIFIED_EMAIL": False,
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": "求人サイト / Job site",
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": provider.issuer, "oauth_pkce_enabled": True},
                }
            ],
        }
    }
