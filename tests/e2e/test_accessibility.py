"""Accessibility beyond what axe-core sees: the consent journey by keyboard alone, with a
visible, contrasting focus ring on every stop; forms that announce their errors, link them
to the fields and keep what was typed; and the checker itself catching what it should.

(Every page of the journeys also passes axe-core and reflows at 320 CSS px: `Visit.check`.)
"""

import re

import pytest

from consent.models import Consent, ConsentEvent
from portal.models import User
from tests.disclosure.test_dispatch import student_with_recipients
from tests.e2e.browser import (
    STATUS_WITHOUT_WORDS_OR_ICON,
    axe_violations,
    describe_violations,
)
from tests.e2e.journeys import consent_setup, exact, ja, reauthenticate_if_asked, sign_in
from tests.factories import PASSWORD, UserFactory, published_version

# Focus, keyboard order and error messages are the pages' own: the journeys' effects on the
# database are tested by test_journeys.py (on CI's PostgreSQL pass, with a real worker).
pytestmark = pytest.mark.same_on_every_database


# The checker ------------------------------------------------------------------------------
def test_the_accessibility_check_catches_what_it_must(browser):
    """The helper every journey relies on is not vacuous: a page with an unlabelled field,
    an image without text, low contrast and no language fails it, readably."""
    page = browser.new_page()
    try:
        page.set_content(
            "<title>t</title><main><h1>x</h1><img src='data:,'><input>"
            "<p style='color:#bbb;background:#fff'>faint</p></main>"
        )
        violations = axe_violations(page)
    finally:
        page.close()
    found = {v["id"] for v in violations}
    assert {"label", "image-alt", "color-contrast", "html-has-lang"} <= found
    text = describe_violations(violations)
    assert "[critical] label" in text and "at input" in text


def test_the_status_check_wants_words_and_an_icon(browser):
    page = browser.new_page()
    try:
        page.set_content(
            '<p class="notice warning" id="colour-only">Careful</p>'
            '<p class="notice success"><span aria-hidden="true">✓</span> Saved</p>'
            '<span class="state on" id="icon-only"><span aria-hidden="true">●</span></span>'
        )
        unclear = page.evaluate(STATUS_WITHOUT_WORDS_OR_ICON)
    finally:
        page.close()
    assert len(unclear) == 2
    assert 'id="colour-only"' in unclear[0] and 'id="icon-only"' in unclear[1]


# Keyboard only ----------------------------------------------------------------------------
def is_text(pattern):
    return lambda info: re.search(pattern, info["text"] or "") is not None


def test_consent_is_granted_and_withdrawn_with_the_keyboard_alone(browse, site):
    student, employer, purpose = consent_setup()
    visit = browse("keyboard")
    page, keyboard = visit.page, visit.page.keyboard
    title = re.escape(purpose.title_ja)

    visit.goto("/accounts/login/")
    visit.check("sign-in")
    # The first Tab reaches the skip link, which takes focus past the header.
    keyboard.press("Tab")
    assert visit.focused()["href"] == "#main"
    keyboard.press("Enter")
    visit.tab_to(lambda i: i["name"] == "login", what="the email field")
    keyboard.type("wrong@example.jp")
    visit.tab_to(lambda i: i["name"] == "password", what="the password field")
    keyboard.type(PASSWORD)
    # Back to correct the email, then forward again.
    visit.tab_to(lambda i: i["name"] == "login", what="the email field", backwards=True)
    keyboard.press("Control+A")
    keyboard.type(student.email)
    visit.tab_to(lambda i: i["name"] == "password", what="the password field")
    with page.expect_navigation():
        keyboard.press("Enter")
    assert visit.path == "/dashboard/", page.url
    visit.check("dashboard")

    visit.tab_to(is_text(re.escape(ja("Decide company by company"))), what="the consent link")
    with page.expect_navigation():
        keyboard.press("Enter")
    visit.check("consents")

    presses = {}
    visit.tab_to(is_text(f"^{re.escape(ja('Turn on'))}.*{title}"), what="Turn on")
    with page.expect_navigation():
        keyboard.press("Space")
        presses["grant"] = 1
    visit.check("granted")
    assert Consent.objects.get(student=student, employer=employer, purpose=purpose).granted

    visit.tab_to(is_text(f"^{re.escape(ja('Your receipt'))}$"), what="the receipt link")
    with page.expect_navigation():
        keyboard.press("Enter")
    visit.check("receipt")
    visit.tab_to(is_text(re.escape(ja("Change this decision"))), what="back to the decision")
    with page.expect_navigation():
        keyboard.press("Enter")
    visit.check("consents-at-the-company")

    # The link went to the company's card: the next Tab is inside it.
    info = visit.tab_to(is_text(f"^{re.escape(ja('Turn off'))}.*{title}"), what="Turn off")
    assert info["tag"] == "button"
    with page.expect_navigation():
        keyboard.press("Enter")
        presses["withdraw"] = 1
    visit.check("withdrawn")
    assert presses["grant"] == presses["withdraw"]
    assert not Consent.objects.get(student=student, employer=employer, purpose=purpose).granted

    visit.tab_to(is_text(re.escape(ja("History with this company"))), what="the history link")
    with page.expect_navigation():
        keyboard.press("Enter")
    visit.check("timeline")
    assert page.locator(".timeline-entry").count() == 2
    assert ConsentEvent.objects.filter(student=student, employer=employer).count() == 2


# Errors announced, linked, and what was typed kept -----------------------------------------
def error_summary_links(visit) -> dict[str, str]:
    """The error summary's links: target id → text. It is announced (role="alert") and has
    the focus when the page loads."""
    page = visit.page
    summary = page.get_by_role("alert")
    assert summary.count() == 1, page.inner_text("main")[:1000]
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.title().startswith(ja("Error:")), page.title()
    return {
        link.get_attribute("href").removeprefix("#"): link.inner_text()
        for link in summary.get_by_role("link").all()
    }


def assert_linked_error(visit, field_id: str, message: str) -> None:
    """Following the summary's link focuses the field, which is marked invalid and
    described by the message."""
    page = visit.page
    page.locator(f"#error-summary a[href='#{field_id}']").focus()
    page.keyboard.press("Enter")
    field = page.locator(f"#{field_id}")
    assert page.evaluate("document.activeElement.id") == field_id
    described = field.get_attribute("aria-describedby") or ""
    group = page.locator(f"fieldset:has(#{field_id})")
    if group.count():  # a radio group: the fieldset carries the description
        described += " " + (group.first.get_attribute("aria-describedby") or "")
    texts = " ".join(page.locator(f"#{i}").inner_text() for i in described.split() if i)
    assert message in texts, f"#{field_id} described by {described!r}: {texts!r}"
    assert field.get_attribute("aria-invalid") == "true"


def test_sign_up_with_mismatched_passwords_says_so_and_keeps_what_was_typed(browse, site):
    published_version()
    visit = browse("signup")
    page = visit.page
    visit.goto("/accounts/signup/")
    visit.check("sign-up")
    page.get_by_label(ja("Your name")).fill("高橋 さくら")
    page.locator("input[name=email]").fill("sakura@example.jp")
    page.locator("input[name=password1]").fill("Kx7-quiet-harbour-2026")
    page.locator("input[name=password2]").fill("Kx7-quiet-harbour-2062")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign Up"))).click()
    assert visit.path == "/accounts/signup/"
    visit.check("sign-up-error")

    links = error_summary_links(visit)
    assert list(links) == ["id_password2"], links
    message = page.locator("#id_password2_error").inner_text()
    assert message and message in links["id_password2"]
    assert_linked_error(visit, "id_password2", message)
    # What was typed is kept, except the passwords, which are never sent back.
    assert page.get_by_label(ja("Your name")).input_value() == "高橋 さくら"
    assert page.locator("input[name=email]").input_value() == "sakura@example.jp"
    assert page.locator("input[name=password1]").input_value() == ""
    assert not User.objects.filter(email="sakura@example.jp").exists()


def test_a_request_without_a_choice_says_so_and_keeps_the_message(browse, site):
    student, _employers = student_with_recipients(("ja",))
    visit = browse("request")
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")
    visit.goto("/requests/new/")
    visit.check("request-form")
    message = "どの会社に私のデータが渡ったか教えてください。"
    page.get_by_label(ja("Message (optional)")).fill(message)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("File the request"))).click()
    # (After the password check allauth shows the replayed form at its own address.)
    reauthenticate_if_asked(visit)
    visit.check("request-form-error")

    links = error_summary_links(visit)
    assert list(links) == ["id_kind_0"], links
    assert ja("Choose what you ask for.") in links["id_kind_0"]
    assert_linked_error(visit, "id_kind_0", ja("Choose what you ask for."))
    assert page.get_by_label(ja("Message (optional)")).input_value() == message
    assert not student.data_requests.exists()

    # Corrected, the same form files the request, with the message typed before.
    page.keyboard.press("Space")  # the focused first choice
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("File the request"))).click()
    [filed] = student.data_requests.all()
    assert visit.path == f"/requests/{filed.reference}/", page.url
    visit.check("request-filed")
    assert filed.message == message


def test_the_policy_cannot_be_accepted_without_ticking_and_says_why(browse, site):
    version = published_version()
    student = UserFactory()
    visit = browse("accept")
    page = visit.page
    sign_in(visit, student.email)
    assert visit.path == "/policies/accept/", page.url
    visit.check("accept")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Accept this privacy policy"))).click()
    visit.check("accept-error")
    links = error_summary_links(visit)
    [field_id] = links
    message = page.locator(".field-error").first.inner_text()
    assert_linked_error(visit, field_id, message)
    assert not student.policy_acceptances.filter(version=version).exists()
    # Ticking it now works.
    page.get_by_role("checkbox").check()
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Accept this privacy policy"))).click()
    visit.check("accepted")
    assert student.policy_acceptances.filter(version=version).exists()


def test_the_companys_answer_without_a_choice_says_so_and_keeps_the_name(browse, site):
    from disclosure.models import DataRequest
    from disclosure.services import request_file
    from tests.e2e.browser import links_in, wait_for_mail
    from tests.smtp import text_of

    student, [employer] = student_with_recipients(("ja",))
    request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    [message] = wait_for_mail(site.mail, lambda m: "/r/" in text_of(m), "to the company")
    [link] = {url for url in links_in(message) if "/r/" in url}
    visit = browse("company")
    page = visit.page
    visit.goto(link)
    visit.check("answer-page")
    name = ja("Name of the person responsible for this answer")
    page.get_by_label(name).fill("人事部 田中 一郎")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Send this answer"))).click()
    visit.check("answer-page-error")

    links = error_summary_links(visit)
    assert list(links) == ["id_answer_0"], links
    assert ja("Choose one of the answers.") in links["id_answer_0"]
    assert_linked_error(visit, "id_answer_0", ja("Choose one of the answers."))
    assert page.get_by_label(name).input_value() == "人事部 田中 一郎"
    assert not request.tasks.filter(answered_at__isnull=False).exists()
