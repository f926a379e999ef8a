"""A correction request in a real browser at a phone's width, in Japanese and in English: the
student finds the correction form from the request form, says what a company holds wrong and
what is right, files it; the company opens the link from the email the real SMTP sink
received, sees what is to be corrected and answers "corrected"; the student sees the answer
and the certificate. Every page axe-clean and reflowing at 320 px."""

import re

import pytest
from django.utils import translation

from disclosure.models import Correction, DataRequest, RecipientTask, RequestFile
from tests.disclosure.test_dispatch import student_with_recipients
from tests.e2e.browser import links_in, wait_for_mail
from tests.e2e.journeys import exact, sign_in
from tests.factories import PASSWORD
from tests.smtp import text_of

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql


def words(language: str):
    """The page's words for an English msgid, in `language`."""

    def said(message: str) -> str:
        with translation.override(language):
            return str(translation.gettext(message))

    return said


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_correction_is_answered_by_the_company_through_its_link(browse, site, language):
    t = words(language)
    student, [employer] = student_with_recipients(
        (language,), email=f"correction.{language}@example.jp"
    )
    visit = browse(f"student-{language}", size="phone")
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")
    if language == "en":
        visit.choose_language("en")

    visit.goto("/requests/new/")
    visit.check("request-form")
    page.get_by_role(
        "link", name=exact(t("Is something about you wrong? Ask for a correction"))
    ).click()
    visit.check("correction-form")
    with translation.override(language):
        company_data = str(Correction.Target.COMPANY.label)
    page.get_by_role("radio", name=re.compile(re.escape(company_data), re.I)).check()
    page.get_by_label(t("What is wrong, in your words")).fill(
        "面接記録の大学名が「東西大学」になっています。"
    )
    page.get_by_label(t("What is right"), exact=True).fill("東都大学 経済学部")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(t("File the correction request"))).click()
    if visit.path == "/accounts/reauthenticate/":
        visit.check("reauthenticate")
        page.locator("input[name=password]").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name=exact(t("Confirm"))).click()
    request = DataRequest.objects.get(student=student)
    assert (request.kind, request.correction.target) == ("correction", "company")
    assert visit.path == f"/requests/{request.reference}/", page.url
    visit.check("correction-filed")
    assert "東都大学 経済学部" in page.inner_text("main")

    # The company's clerk opens the link in the email the SMTP server received.
    [message] = wait_for_mail(
        site.mail,
        lambda m: "/r/" in text_of(m) and m["To"] != student.email,
        "the correction to the company",
    )
    [link] = [url for url in links_in(message) if "/r/" in url]
    company = browse(f"company-{language}", size="phone")
    company.goto(link)
    company.check("answer-page")
    answer_page = company.page.inner_text("main")
    assert t("A student asks your company to correct their data") in answer_page
    assert "東西大学" in answer_page and "東都大学 経済学部" in answer_page
    assert company.page.locator("input[name=answer]").count() == 3
    company.page.get_by_role("radio", name=exact(t("We have corrected the data as asked"))).check()
    company.page.get_by_label(t("Name of the person responsible for this answer")).fill(
        "人事部 田中 一郎"
    )
    with company.page.expect_navigation():
        company.page.get_by_role("button", name=exact(t("Send this answer"))).click()
    company.check("answer-recorded")
    task = RecipientTask.objects.get(request=request)
    assert (task.status, task.answer) == ("answered", "corrected")

    # The student sees the company's answer, and the certificate once it is made.
    site.wait_for(
        lambda: RequestFile.objects.filter(
            request=request, kind=RequestFile.Kind.CERTIFICATE_PDF
        ).exists(),
        "the completion certificate",
    )
    page.reload()
    visit.check("correction-answered")
    with translation.override(language):
        corrected = str(RecipientTask.Answer.CORRECTED.label)
        completed = str(DataRequest.Status.COMPLETED.label)
    assert corrected in page.locator(f"#task-{task.pk}").inner_text()
    assert completed.lower() in page.locator(".request-status").inner_text().lower()
    assert employer.display_name(language) in page.inner_text("main")
