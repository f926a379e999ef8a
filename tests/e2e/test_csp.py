"""The Content-Security-Policy in Chromium: it blocks what an attacker would inject and the
browser tests hear of it; and the pages the journeys do not reach (the admin's widgets, the
email-change page) run under it without a violation, their scripts still working.

(Every page of the journeys is checked for violations too: `Visit.check`.)
"""

import pytest
from allauth.account.models import EmailAddress
from django.test import Client

from tests.e2e.browser import ACTION_TIMEOUT_MS, VIEWPORTS, Visit
from tests.factories import PurposeFactory, StaffFactory, UserFactory


@pytest.fixture
def open_visit(browser, site, artifacts):
    """A Visit of its own, without the journeys' end-of-test check that every page passed
    axe-core: these tests look at the policy alone. `as_user` signs the browser in."""
    contexts = []

    def open_visit(as_user=None) -> Visit:
        context = browser.new_context(
            **VIEWPORTS["desktop"], locale="ja-JP", timezone_id="Asia/Tokyo", base_url=site.url
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        if as_user is not None:
            client = Client()
            client.force_login(as_user)
            session = client.cookies["sessionid"].value
            context.add_cookies([{"name": "sessionid", "value": session, "url": site.url}])
        return Visit(page=context.new_page(), base_url=site.url, artifacts=artifacts)

    yield open_visit
    for context in contexts:
        context.close()


INJECT = """() => {
  const script = document.createElement('script');
  script.textContent = 'window.injected = "an inline script ran"';
  document.body.append(script);
  const box = document.createElement('div');
  box.innerHTML = '<img id="probe" alt="" src="data:image/gif;base64,R0lGODlhAQABAAAAACw='
    + 'AAAAAAQABAAACAkQBADs=" onload="window.injected = \\'a handler ran\\'">'
    + '<p id="styled" style="color: rgb(255, 0, 0)">x</p>';
  document.body.append(box);
  const style = document.createElement('style');
  style.textContent = 'main { display: none }';
  document.head.append(style);
}"""


def test_an_injected_script_handler_and_style_are_blocked_and_reported(open_visit, site):
    visit = open_visit()
    page = visit.page
    visit.goto("/")
    visit.assert_no_csp_violations("home")

    page.evaluate(INJECT)
    page.wait_for_function("() => document.getElementById('probe').complete")
    assert page.evaluate("window.injected") is None
    assert page.locator("main").is_visible()
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") != (
        "rgb(255, 0, 0)"
    )

    with pytest.raises(AssertionError) as failure:
        visit.assert_no_csp_violations("home, with injected code")
    report = str(failure.value)
    assert report.startswith("home, with injected code: the Content-Security-Policy blocked 4")
    for blocked in (
        "script-src-elem blocked inline",
        "script-src-attr blocked inline",
        "style-src-attr blocked inline",
        "style-src-elem blocked inline",
    ):
        assert blocked in report, report
    assert "'window.injected = \"an inline script ran\"'" in report  # what it was
    assert f"on {site.url}/" in report  # and where
    # Reported once: the next page starts clean.
    visit.assert_no_csp_violations("home, once reported")


def test_the_admin_s_own_scripts_and_widgets_work_under_the_policy(open_visit, site):
    PurposeFactory(code="account")
    staff = StaffFactory()
    UserFactory.create_batch(2)
    visit = open_visit(as_user=staff)
    page = visit.page

    visit.goto("/admin/")
    page.locator("button.theme-toggle").first.click()  # theme.js
    visit.assert_no_csp_violations("admin dashboard")

    # A date and time with the calendar and clock shortcuts; a filter_horizontal choice.
    visit.goto("/admin/consent/policyversion/add/")
    page.locator(".datetimeshortcuts a").filter(has=page.locator(".date-icon")).first.click()
    page.locator(".calendarbox .calendar-shortcuts a").first.click()  # "today"
    page.locator(".datetimeshortcuts a").filter(has=page.locator(".clock-icon")).first.click()
    page.locator(".clockbox .timelist a").first.click()  # "now"
    assert page.locator("#id_effective_at_0").input_value()
    assert page.locator("#id_effective_at_1").input_value()
    page.select_option(
        "#id_purposes_from", label=page.locator("#id_purposes_from option").first.inner_text()
    )
    page.locator("#id_purposes_add").click()
    assert page.locator("#id_purposes_to option").count() == 1
    page.locator("#toggle-nav-sidebar").click()  # nav_sidebar.js
    visit.assert_no_csp_violations("policy version form")

    # An inline formset's "add another" row.
    visit.goto("/admin/portal/employer/add/")
    rows = page.locator(".inline-group tbody tr.form-row:not(.empty-form)")
    before = rows.count()
    page.locator(".add-row a").first.click()
    assert rows.count() == before + 1
    visit.assert_no_csp_violations("employer form")

    # A changelist's select-all and action bar.
    visit.goto("/admin/portal/user/")
    page.locator("#action-toggle").check()
    assert page.locator("input.action-select:checked").count() == 3
    assert page.locator(".action-counter").inner_text()
    visit.assert_no_csp_violations("user list")


def test_the_email_page_with_a_pending_change_keeps_its_hidden_form_hidden(open_visit):
    student = UserFactory()
    EmailAddress.objects.create(user=student, email="new@example.jp", verified=False)
    visit = open_visit(as_user=student)
    visit.goto("/accounts/email/")
    assert visit.page.locator("form#pending-email").count() == 1
    assert not visit.page.locator("form#pending-email").is_visible()
    visit.assert_no_csp_violations("email page, change pending")
