"""`manage.py create_api_key`: a key printed once, stored as a hash, revocable."""

import io
import re

import pytest
from django.core.management import CommandError, call_command

from consent.api.urls import bench_routes_enabled
from consent.models import ApiClient
from tests.factories import EmployerFactory

pytestmark = pytest.mark.django_db


def create_key(*args) -> tuple[str, str]:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    output = out.getvalue()
    return re.search(r"^\s+(sdp_\S+)$", output, re.MULTILINE).group(1), output


def check(client, key):
    return client.post(
        "/api/v1/consents/check",
        {"checks": []},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_a_pipeline_key_is_printed_once_works_and_is_stored_only_as_its_hash(client):
    key, output = create_key("--name", "Analytics pipeline", "--pipeline")

    assert "cannot be shown again" in output
    assert len(key) > 40  # sdp_ + 43 characters of a 256-bit token
    assert check(client, key).status_code == 200

    api_client = ApiClient.objects.get()
    assert (api_client.kind, api_client.employer) == (ApiClient.Kind.PIPELINE, None)
    assert api_client.key_prefix == key[:8]
    columns = [str(getattr(api_client, f.attname)) for f in ApiClient._meta.concrete_fields]
    assert not [value for value in columns if key in value]
    assert key[8:] not in output.replace(key, "")  # printed once, in full, and only once


def test_an_employer_key_names_its_employer(client):
    employer = EmployerFactory()
    key, _ = create_key("--name", "Aoba HR", "--employer", str(employer.pk))
    api_client = ApiClient.objects.get()
    assert (api_client.kind, api_client.employer) == (ApiClient.Kind.EMPLOYER, employer)
    assert check(client, key).status_code == 200


def test_every_key_is_different():
    keys = {create_key("--name", f"k{n}", "--pipeline")[0] for n in range(5)}
    assert len(keys) == 5


def test_a_key_is_revoked_by_its_prefix(client):
    key, _ = create_key("--name", "Analytics pipeline", "--pipeline")
    out = io.StringIO()
    call_command("create_api_key", "--revoke", key[:8], stdout=out)
    assert "Revoked" in out.getvalue()
    assert ApiClient.objects.get().revoked_at is not None
    assert check(client, key).status_code == 401


def test_a_key_is_revoked_by_itself_when_prefixes_collide(client):
    first, _ = create_key("--name", "one", "--pipeline")
    second, _ = create_key("--name", "two", "--pipeline")
    ApiClient.objects.update(key_prefix="sdp_same")
    with pytest.raises(CommandError, match="2 live keys"):
        call_command("create_api_key", "--revoke", "sdp_same")
    call_command("create_api_key", "--revoke", second, stdout=io.StringIO())
    assert check(client, first).status_code == 200
    assert check(client, second).status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x"],  # neither
        ["--name", "x", "--pipeline", "--employer", "1"],  # both
        ["--pipeline"],  # no name
        ["--name", "x", "--employer", "999999"],  # unknown employer
        ["--revoke", "sdp_none"],  # no such key
        ["--revoke", "sdp_none", "--pipeline"],
    ],
)
def test_wrong_options_are_command_errors(args):
    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=io.StringIO())
    assert not ApiClient.objects.exists()


def test_the_benchmark_route_exists_only_in_a_benchmark_server(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.delenv("PORTAL_BENCH", raising=False)
    assert not bench_routes_enabled()
    monkeypatch.setenv("PORTAL_BENCH", "1")
    assert bench_routes_enabled()
    settings.DEBUG = True
    assert not bench_routes_enabled()
