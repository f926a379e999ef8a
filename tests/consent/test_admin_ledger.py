"""Staff read the consent ledgers in the admin; nobody changes them there."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone, translation

from consent.api.keys import api_key_create, key_sha256
from consent.models import ApiClient, Consent, ConsentEvent, Provision, StopUseNotice
from consent.services import consent_grant, consent_withdraw, provision_record
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
    accept,
    published_version,
)

pytestmark = pytest.mark.django_db


LEDGERS = [ConsentEvent, Consent, Provision, StopUseNotice]


@pytest.fixture
def ledger():
    """Two students, each with a grant, a provision and a withdrawal at their own company,
    so every ledger has a row for each and the stop-use notices exist."""
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    version = published_version(purposes=[PurposeFactory(code="account"), analysis])
    rows = {}
    for key, email, company in (
        ("hanako", "hanako@example.jp", "株式会社さくら"),
        ("taro", "taro@example.jp", "Momiji Holdings"),
    ):
        student = UserFactory(email=email)
        accept(student, version)
        employer = EmployerFactory(name=company)
        consent_grant(student=student, employer=employer, purpose=analysis)
        provision_record(student=student, employer=employer, purpose=analysis, data_items="score")
        consent_withdraw(student=student, employer=employer, purpose=analysis)
        rows[key] = student
    return rows


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory())
    return client


def _url(model, view, *args):
    return reverse(f"admin:consent_{model._meta.model_name}_{view}", args=args)


def _listed(response) -> list:
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_the_ledger_lists_and_details_are_readable(staff_client, ledger, model):
    listing = staff_client.get(_url(model, "changelist"))
    assert listing.status_code == 200
    assert len(_listed(listing)) == model.objects.count() > 0
    obj = model.objects.first()
    detail = staff_client.get(_url(model, "change", obj.pk))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_the_ledger_refuses_add_change_and_delete(staff_client, ledger, model):
    obj = model.objects.first()
    count = model.objects.count()

    listing = staff_client.get(_url(model, "changelist"))
    assert _url(model, "add") not in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    assert staff_client.get(_url(model, "add")).status_code == 403
    assert staff_client.post(_url(model, "add"), {}).status_code == 403
    assert staff_client.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert staff_client.get(_url(model, "delete", obj.pk)).status_code == 403
    assert staff_client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.count() == count


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_the_ledger_is_searchable_by_student_email(staff_client, ledger, model):
    response = staff_client.get(_url(model, "changelist"), {"q": "hanako@example"})
    listed = _listed(response)
    assert listed
    for obj in listed:
        student = obj.event.student if model is StopUseNotice else obj.student
        assert student == ledger["hanako"]


@pytest.mark.parametrize("model", LEDGERS, ids=lambda m: m.__name__)
def test_the_ledger_is_searchable_by_employer_name(staff_client, ledger, model):
    response = staff_client.get(_url(model, "changelist"), {"q": "さくら"})
    listed = _listed(response)
    assert listed
    assert {obj.employer.name for obj in listed} == {"株式会社さくら"}


def test_the_ledger_is_searchable_by_pseudonymous_id(staff_client, ledger):
    public_id = str(ledger["taro"].public_id)
    response = staff_client.get(_url(ConsentEvent, "changelist"), {"q": public_id})
    listed = _listed(response)
    assert listed
    assert {event.student for event in listed} == {ledger["taro"]}


def test_consent_events_filter_by_action(staff_client, ledger):
    response = staff_client.get(_url(ConsentEvent, "changelist"), {"action__exact": "withdraw"})
    assert {event.action for event in _listed(response)} == {"withdraw"}
    assert len(_listed(response)) == 2


def test_stop_use_notices_show_and_filter_by_the_emails_status(staff_client, ledger):
    notice = StopUseNotice.objects.get(event__student=ledger["hanako"])
    EmailMessage.objects.filter(pk=notice.email_id).update(status=EmailMessage.Status.FAILED)

    failed = staff_client.get(_url(StopUseNotice, "changelist"), {"email__status__exact": "failed"})
    assert _listed(failed) == [notice]
    with translation.override(failed["Content-Language"]):
        assert str(EmailMessage.Status.FAILED.label) in failed.content.decode()
    sent = staff_client.get(_url(StopUseNotice, "changelist"), {"email__status__exact": "queued"})
    assert notice not in _listed(sent)


def test_a_staff_member_with_view_permission_only_can_read_the_ledger(client, ledger):
    staff = StaffFactory(is_superuser=False)
    staff.user_permissions.add(Permission.objects.get(codename="view_consentevent"))
    client.force_login(staff)
    assert client.get(_url(ConsentEvent, "changelist")).status_code == 200
    assert client.get(_url(Provision, "changelist")).status_code == 403


def test_a_student_is_sent_to_the_admin_login(client, ledger):
    client.force_login(ledger["hanako"])
    response = client.get(_url(ConsentEvent, "changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_the_ledger_lists_run_a_fixed_number_of_queries(
    staff_client, ledger, django_assert_max_num_queries
):
    for model in LEDGERS:
        with django_assert_max_num_queries(12):
            assert staff_client.get(_url(model, "changelist")).status_code == 200


# --- API clients --------------------------------------------------------------------------


def test_api_clients_are_listed_with_an_add_button_and_the_command_mentioned(staff_client):
    client_row, _key = api_key_create(name="analytics pipeline")

    listing = staff_client.get(_url(ApiClient, "changelist"))

    html = listing.content.decode()
    assert listing.status_code == 200
    assert "analytics pipeline" in html and client_row.key_prefix in html
    assert "create_api_key" in html
    assert _url(ApiClient, "add") in html


def test_creating_a_key_shows_it_once_and_stores_only_its_hash(staff_client):
    employer = EmployerFactory(name="Aoba Systems")
    form = staff_client.get(_url(ApiClient, "add"))
    assert form.status_code == 200 and 'name="name"' in form.content.decode()

    response = staff_client.post(
        _url(ApiClient, "add"),
        {"name": "Aoba HR", "kind": "employer", "employer": employer.pk, "reason": "Their ask"},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    assert key.startswith("sdp_") and key in response.content.decode()
    client_row = ApiClient.objects.get(name="Aoba HR")
    assert (client_row.kind, client_row.employer) == ("employer", employer)
    assert client_row.key_sha256 == key_sha256(key) and key not in client_row.key_sha256
    assert client_row.key_prefix == key[:8]
    # Shown once: the key's own page shows the prefix, never the key.
    page = staff_client.get(_url(ApiClient, "change", client_row.pk)).content.decode()
    assert key not in page and client_row.key_prefix in page


@pytest.mark.parametrize(
    "data",
    [
        {"name": "no company", "kind": "employer"},
        {"name": "", "kind": "pipeline"},
        {"name": "pipeline with a company", "kind": "pipeline", "employer": "EMPLOYER"},
    ],
)
def test_an_incomplete_key_form_makes_no_key(staff_client, data):
    employer = EmployerFactory()
    data = {k: employer.pk if v == "EMPLOYER" else v for k, v in data.items()}

    response = staff_client.post(_url(ApiClient, "add"), data)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert "key" not in response.context
    assert not ApiClient.objects.exists()


def test_an_api_clients_key_fields_cannot_be_changed(staff_client):
    employer = EmployerFactory()
    client_row, _key = api_key_create(name="old name", employer=employer)
    stored_hash = client_row.key_sha256

    response = staff_client.post(
        _url(ApiClient, "change", client_row.pk),
        {
            "name": "new name",
            "kind": "pipeline",
            "key_prefix": "sdp_fake",
            "key_sha256": "0" * 64,
            "revoked_at_0": "",
        },
    )

    assert response.status_code == 302
    client_row.refresh_from_db()
    assert client_row.name == "new name"
    assert (client_row.kind, client_row.employer, client_row.key_sha256) == (
        "employer",
        employer,
        stored_hash,
    )
    assert client_row.revoked_at is None
    assert staff_client.get(_url(ApiClient, "delete", client_row.pk)).status_code == 403


def test_revoking_selected_keys_asks_for_a_reason_then_keeps_an_earlier_revocation_time(
    staff_client,
):
    live, _ = api_key_create(name="live")
    untouched, _ = api_key_create(name="untouched")
    earlier, _ = api_key_create(name="revoked before")
    revoked_before = timezone.now() - timedelta(days=30)
    ApiClient.objects.filter(pk=earlier.pk).update(revoked_at=revoked_before)
    selected = {"action": "revoke", "_selected_action": [live.pk, earlier.pk]}

    confirm = staff_client.post(_url(ApiClient, "changelist"), selected)

    assert confirm.status_code == 200
    assert 'name="reason"' in confirm.content.decode()
    assert list(confirm.context["live"]) == [live]
    live.refresh_from_db()
    assert live.revoked_at is None  # nothing yet

    response = staff_client.post(
        _url(ApiClient, "changelist"), {**selected, "post": "yes", "reason": "Leaked in a log"}
    )

    assert response.status_code == 302
    live.refresh_from_db()
    earlier.refresh_from_db()
    untouched.refresh_from_db()
    assert live.revoked_at is not None
    assert earlier.revoked_at == revoked_before
    assert untouched.revoked_at is None
