"""Journeys 1-4 in a real Chromium, each at a phone's width and a desktop's: every page
passes axe-core and reflows at 320 px; the emails are read from a real SMTP server and
their links followed; files are downloaded and read."""

import pytest

from consent.models import Consent
from disclosure.models import DataRequest
from tests.e2e.journeys import (
    consent_journey,
    deletion_journey,
    disclosure_journey,
    signup_journey,
    support_journey,
)

# CI runs these on the PostgreSQL pass, with a real worker; on the SQLite pass (tasks
# in-process) test_language.py walks sign-up, consent and deletion (docs/testing.md).
pytestmark = pytest.mark.left_to_postgresql


def test_a_student_signs_up_verifies_accepts_and_downloads_the_receipt(browse, site, viewport):
    result = signup_journey(browse("student"), site)
    assert result["student"].emailaddress_set.get().verified


def test_a_student_grants_and_withdraws_consent_with_a_receipt_for_each(browse, site, viewport):
    result = consent_journey(browse("student"), site)
    assert not Consent.objects.get(student=result["student"], employer=result["employer"]).granted


def test_a_deletion_request_is_confirmed_by_the_company_from_its_email(browse, site, viewport):
    result = deletion_journey(browse("student"), site, browse("company"))
    result["request"].refresh_from_db()
    assert result["request"].status == DataRequest.Status.COMPLETED
    if site.worker is not None:  # the PostgreSQL + Redis pass: the worker did the sending
        log = site.worker.output()
        assert "disclosure.tasks" in log and "succeeded" in log, log


def test_a_student_files_a_disclosure_request_and_downloads_pdf_and_json(browse, site, viewport):
    result = disclosure_journey(browse("student"), site)
    assert result["request"].kind == DataRequest.Kind.DISCLOSURE


def test_support_resends_the_overdue_companys_link_from_the_dashboard(browse, site, viewport):
    result = support_journey(browse("support"), site, browse("company"))
    task = result["task"]
    # one link works: the new one (the first, and any a reminder carried, are revoked)
    assert task.links.filter(revoked_at=None).count() == 1
    assert task.links.exclude(revoked_at=None).exists()
