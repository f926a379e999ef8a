"""The student's "What the site inferred about you" in a real browser, at a phone's width,
every page axe-clean and reflowing at 320 px, in Japanese and (switched and back) English:
found from the navigation, a result disputed with the short form on the page, a dispute
without words refused with the error linked to the field, and the model objected to, the
company that was given a result told by email."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.services import consent_grant
from inferences.models import InferenceDispute, InferenceObjection, ObjectionNotice
from tests.e2e.journeys import exact, ja, sign_in
from tests.e2e.test_accessibility import assert_linked_error, error_summary_links
from tests.factories import EmployerFactory, inference_model, opt_in_purposes, student_who_accepted
from tests.inferences.conftest import send

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql


def scored_student():
    analysis, provision = opt_in_purposes()
    inference_model(purpose=analysis)
    student, _version = student_who_accepted(
        analysis, provision, email="misaki.e2e@example.jp", display_name="佐藤 美咲"
    )
    aoba = EmployerFactory(
        name="株式会社青葉", name_en="Aoba KK", contact_email="privacy@aoba.example"
    )
    consent_grant(student=student, employer=aoba, purpose=analysis)
    consent_grant(student=student, employer=aoba, purpose=provision)  # to hand results over
    pipeline = api_key_create(name="Analytics pipeline", scopes=["inferences:write"])[0]
    now = timezone.now()
    for n, (output, handed) in enumerate([(74, True), (69, False)]):
        at = now - timedelta(seconds=10 - n)
        made = send(pipeline, student, aoba, id=f"r-{n}", output=output, at=at, handed=handed)
        assert made.result == "stored", made
    return student, aoba


def test_the_student_finds_disputes_and_objects_on_a_phone(browse, site):
    student, aoba = scored_student()
    visit = browse("inferences", size="phone")
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")

    visit.toggle_language = True  # the page's checks, in Japanese and in English
    page.get_by_role("link", name=exact(ja("What the site inferred about you"))).first.click()
    visit.check("inferences")
    assert "内定辞退率の予測" in page.inner_text("main")
    assert page.locator(".inference-result").count() == 2

    # A dispute sent without words: the result's own page says so, linked to the field.
    visit.toggle_language = False  # (an answer to a POST: switching would load it afresh)
    newest = page.locator(".inference-result").first
    newest.locator("summary").click()
    with page.expect_navigation():
        newest.get_by_role("button", name=exact(ja("Send the dispute"))).click()
    visit.check("dispute-error")
    links = error_summary_links(visit)
    [field_id] = links
    assert_linked_error(visit, field_id, ja("Say what is wrong with this result."))
    page.locator(f"#{field_id}").fill("辞退するつもりはありません。")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Send the dispute"))).click()
    visit.toggle_language = True
    visit.check("disputed")
    [dispute] = InferenceDispute.objects.filter(student=student)
    assert dispute.inference.output_number == 69
    assert ja("disputed") in page.locator(f"#result-{dispute.inference_id}").inner_text()

    # Objecting works at once, and the company that was handed a result is told.
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile(re.escape(ja("Object to this model")))).click()
    visit.check("objected")
    assert InferenceObjection.objects.filter(student=student).exists()
    [notice] = ObjectionNotice.objects.all()
    assert notice.employer == aoba
    site.wait_for(
        lambda: bool(site.mail.received("privacy@aoba.example")), "the company's notice emailed"
    )
