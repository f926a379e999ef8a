"""The issue's "done when", on the real parts: a student signs in through the test OIDC
provider, the job site posts their activity through the API, they file a deletion on the
page, a real Celery worker calls both reference sources (subprocesses on loopback, which
answer by the signed callback) and emails every company, each company answers by the link
in its email, and the worker's certificate lists them all.

PostgreSQL and a broker only (CI's second pass), like every test with a real worker.
"""

import re

from django.urls import reverse

from consent.api.keys import api_key_create
from consent.services import consent_grant, provision_record
from disclosure.models import DataRequest, RecipientTask, RequestFile, SourceTask
from portal.models import ActivityRecord
from tests.disclosure import test_sources, test_worker_flow
from tests.disclosure.test_api_activity import post, record, results
from tests.disclosure.test_dispatch import token_of
from tests.disclosure.test_sources import pdf_text
from tests.disclosure.test_worker_flow import Worker, clear_broker, squash
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.smtp import text_of
from tests.sso.site import portal_settings_for
from tests.sso.test_sign_in import sign_in, signed_in_user
from tests.workers import REAL_WORKER_MARKS

pytestmark = REAL_WORKER_MARKS

# The fixtures of the two modules this journey joins.
reference_sources = test_sources.reference_sources
smtp = test_worker_flow.smtp


def test_a_site_student_s_deletion_reaches_both_sources_and_every_company_through_a_worker(
    client,
    oidc_provider,
    settings,
    reference_sources,
    live_server,
    smtp,
    tmp_path,  # noqa: F811
):
    settings.SOCIALACCOUNT_PROVIDERS = portal_settings_for(oidc_provider)
    oidc_provider.user("tsubaki", email="tsubaki@example.jp", name="椿 葵")
    clear_broker()
    worker = Worker(smtp, tmp_path / "worker.log", extra_env={"SITE_URL": live_server.url})
    try:
        sign_in(client, oidc_provider, "tsubaki")
        student = signed_in_user(client)
        assert student is not None and student.socialaccount_set.get().uid
        analysis, provision = opt_in_purposes()
        version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
        accept(student, version)
        employers = [EmployerFactory(language=language) for language in ("ja", "en")]
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=provision)
            provision_record(
                student=student, employer=employer, purpose=provision, data_items="閲覧履歴"
            )
        _site, key = api_key_create(name="Job site", scopes=["activity:write"])
        sent = [record(student, employer=employer) for employer in employers]
        assert results(post(client, {"records": sent}, key)) == [("stored", 201, None)] * 2

        form = {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""}
        response = client.post(reverse("disclosure:request_new"), form)
        # No portal password: allauth mails a code (through the worker) to confirm it is them.
        assert response["Location"].startswith("/accounts/reauthenticate/code/")
        client.post(response["Location"], {"recipient": student.email, "next": "/requests/new/"})

        def codes() -> list[str]:
            return [
                code
                for message in smtp.received(student.email)
                for code in re.findall(r"^\s*([A-Za-z0-9-]{6,12})\s*$", text_of(message), re.M)
            ]

        worker.wait_for(codes, "the code email", smtp=smtp)
        response = client.post(
            reverse("account_confirm_reauthentication_code"),
            {"code": codes()[-1], "next": "/requests/new/"},
        )
        assert "/requests/R-" in response["Location"], response["Location"]
        request = DataRequest.objects.get(student=student, kind=DataRequest.Kind.DELETION)
        assert not ActivityRecord.objects.filter(student=student).exists()  # the portal's part

        worker.wait_for(
            lambda: SourceTask.objects.filter(request=request, answer="confirmed").count() == 2,
            "both sources' signed confirmations",
            smtp=smtp,
        )
        for employer in employers:
            address = employer.primary_contact.email
            worker.wait_for(lambda a=address: smtp.received(a), f"the email to {address}")
            [message] = smtp.received(address)
            answer = {"answer": "deleted", "attestation": "on", "answered_by": "人事部 佐藤"}
            assert client.post(f"/r/{token_of(message)}/", answer).status_code == 302
        worker.wait_for(
            lambda: request.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists(),
            "the certificate",
            smtp=smtp,
        )
    finally:
        worker.stop()
        clear_broker()

    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    assert set(request.tasks.values_list("status", flat=True)) == {RecipientTask.Status.ANSWERED}
    for employer in employers:  # each company emailed once, by the worker
        assert len(smtp.received(employer.primary_contact.email)) == 1
    text = squash(pdf_text(request.files.get(kind=RequestFile.Kind.CERTIFICATE_PDF).content))
    for name in ("応募管理システム", "閲覧履歴基盤", *(squash(e.name) for e in employers)):
        assert name in text
