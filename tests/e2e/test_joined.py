"""Journey 9, the joined portal, in a real Chromium: a student of the job site signs in with
its account, the site posts their activity through the API, they file a deletion (confirming
it is them by an emailed code: they have no portal password), both of the site's own systems
(reference sources on loopback) confirm by the signed callback, every company answers by its
email's link, and the request page shows it completed with the systems listed.

PostgreSQL and a real worker only: on SQLite the sources' callbacks write while the filing
still writes, which its shared in-memory test database refuses (table is locked)."""

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import translation

from consent.api.keys import api_key_create
from consent.services import consent_grant, provision_record
from disclosure.models import DataRequest, RequestFile, SourceTask
from portal.models import ActivityRecord
from tests.disclosure import test_sources
from tests.disclosure.test_api_activity import post, record, results
from tests.e2e import test_sso
from tests.e2e.browser import links_in, wait_for_mail
from tests.e2e.journeys import exact, ja, sso_journey
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.smtp import text_of

pytestmark = pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="the sources' callbacks write while the filing writes: SQLite's shared in-memory "
    "test database refuses that (run on PostgreSQL)",
)

# The fixtures this journey borrows.
reference_sources = test_sources.reference_sources
job_site = test_sso.job_site


def test_a_site_student_s_deletion_reaches_the_site_s_systems_and_every_company(
    browse,
    site,
    job_site,
    reference_sources,
    viewport,  # noqa: F811
):
    visit = browse("student")
    student = sso_journey(visit, site, job_site)["student"]
    page = visit.page
    analysis, provision = opt_in_purposes()
    version = published_version(
        label="2026.05", purposes=[PurposeFactory(code="account"), analysis, provision]
    )
    accept(student, version)
    employers = [EmployerFactory(language=language) for language in ("ja", "en")]
    for employer in employers:
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    _site, key = api_key_create(name="Job site", scopes=["activity:write"])
    sent = [record(student, employer=employer) for employer in employers]
    assert results(post(Client(), {"records": sent}, key)) == [("stored", 201, None)] * 2

    visit.goto("/requests/new/")
    visit.check("request-form")
    with translation.override("ja"):
        deletion = str(DataRequest.Kind.DELETION.label)
    page.get_by_role("radio", name=re.compile(re.escape(deletion), re.I)).check()
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("File the request"))).click()
    # No portal password: a code by email confirms it is them, then the POST is replayed.
    assert visit.path.startswith("/accounts/reauthenticate/code/"), page.url
    visit.check("request-code")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()
    visit.check("enter-code")
    [message] = wait_for_mail(
        site.mail, lambda m: m["To"] == student.email and "/r/" not in text_of(m), "the code"
    )[-1:]
    code = re.findall(r"^\s*([A-Za-z0-9-]{6,12})\s*$", text_of(message), re.M)[-1]
    page.locator("input[name=code]").fill(code)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()
    request = DataRequest.objects.get(student=student, kind=DataRequest.Kind.DELETION)
    assert visit.path == f"/requests/{request.reference}/", page.url
    visit.check("request-filed")
    assert not ActivityRecord.objects.filter(student=student).exists()

    site.wait_for(
        lambda: SourceTask.objects.filter(request=request, answer="confirmed").count() == 2,
        "both systems' signed confirmations",
    )

    def to_companies():
        with site.mail._lock:
            return [m for m in site.mail.messages if "/r/" in text_of(m)]

    site.wait_for(lambda: len(to_companies()) == 2, "the request emailed to both companies")
    for message in to_companies():
        [link] = [url for url in links_in(message) if "/r/" in url]
        answer = {"answer": "deleted", "attestation": "on", "answered_by": "人事部 佐藤"}
        assert Client().post(link.removeprefix(site.url), answer).status_code == 302
    site.wait_for(
        lambda: request.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists(),
        "the certificate",
    )
    page.reload()
    visit.check("request-completed")
    with translation.override("ja"):
        completed = str(DataRequest.Status.COMPLETED.label)
    assert completed in page.locator(".request-status").inner_text()
    body = page.locator("main").inner_text()
    for name in ("応募管理システム", "閲覧履歴基盤"):
        assert name in body
