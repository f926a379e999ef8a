"""The journeys, written once: test_journeys.py runs them at a phone's width and a
desktop's; test_language.py runs journeys 1-3 again switching every page to English and
back. Each returns what the tests assert on afterwards.

Pages are in Japanese (the default language; the contexts ask for ja-JP). Buttons and links
are found by their role and accessible name, taken from the catalogues with `ja(...)`, so a
control without a proper name is not found.
"""

import re

from django.utils import translation

from consent.models import ConsentEvent
from disclosure.models import DataRequest, RecipientTask, RequestFile
from portal.models import User
from tests.e2e.browser import (
    Visit,
    json_of,
    links_in,
    pdf_text,
    squash,
    wait_for_mail,
)
from tests.factories import (
    PASSWORD,
    EmployerFactory,
    opt_in_purposes,
    published_version,
    totp_activate,
    totp_code,
)
from tests.smtp import text_of
from tests.sso.site import PASSWORD as SSO_PASSWORD


def ja(message: str) -> str:
    """The Japanese the page shows for an English msgid."""
    with translation.override("ja"):
        return str(translation.gettext(message))


def exact(text: str) -> re.Pattern:
    """An accessible name that is `text`, give or take spaces."""
    return re.compile(r"^\s*" + r"\s*".join(map(re.escape, text.split())) + r"\s*$")


def sign_in(visit: Visit, email: str, password: str = PASSWORD) -> None:
    page = visit.page
    visit.goto("/accounts/login/")
    visit.check("sign-in")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign In"))).click()


def enter_totp_code(visit: Visit, secret: str) -> None:
    """allauth's second-factor step after the password: type what the authenticator app
    with `secret` shows now."""
    page = visit.page
    assert visit.path == "/accounts/2fa/authenticate/", page.url
    visit.check("two-factor-code")
    page.locator("input[name=code]").fill(totp_code(secret))
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign In"))).click()


def file_request(visit: Visit, password: str = PASSWORD) -> None:
    """Press "File the request"; allauth holds the POST back until the student gives their
    password again, then replays it."""
    page = visit.page
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("File the request"))).click()
    reauthenticate_if_asked(visit, password)


def reauthenticate_if_asked(visit: Visit, password: str = PASSWORD) -> None:
    page = visit.page
    if visit.path == "/accounts/reauthenticate/":
        visit.check("reauthenticate")
        page.locator("input[name=password]").fill(password)
        with page.expect_navigation():
            page.get_by_role("button", name=exact(ja("Confirm"))).click()
        # The replayed POST's answer: a redirect, or the form again if it had an error.
        assert page.locator("input[name=password]").count() == 0, "the password was refused"


# 1. Sign up, verify, accept, see it, download the receipt ----------------------------------
def signup_journey(visit: Visit, site) -> dict:
    """A new student signs up, follows the link in the verification email, accepts the
    policy, finds it in "My privacy policies" and downloads its receipt."""
    version = published_version(label="2026.04")
    page = visit.page
    email = "new.student@example.jp"

    visit.goto("/")
    visit.check("home")
    page.get_by_role("link", name=exact(ja("Create an account"))).click()
    visit.check("sign-up")
    page.get_by_label(ja("Your name")).fill("佐藤 美咲")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill("Kx7-quiet-harbour-2026")
    page.locator("input[name=password2]").fill("Kx7-quiet-harbour-2026")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign Up"))).click()
    assert visit.path == "/accounts/confirm-email/", page.url
    visit.check("verification-sent")

    [message] = wait_for_mail(site.mail, lambda m: m["To"] == email, f"to {email}")
    [link] = [url for url in links_in(message) if "/accounts/confirm-email/" in url]
    assert link.startswith(site.url), link
    visit.goto(link)
    visit.check("confirm-email")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Confirm"))).click()

    # Signed in by confirming; the new policy is asked for before anything else.
    assert visit.path == "/policies/accept/", page.url
    visit.check("accept-policy")
    page.get_by_role("checkbox").check()
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Accept this privacy policy"))).click()
    visit.check("after-accepting")

    page.get_by_role("navigation").get_by_role(
        "link", name=exact(ja("My privacy policies"))
    ).click()
    assert visit.path == "/policies/", page.url
    visit.check("my-policies")
    student = User.objects.get(email=email)
    [acceptance] = student.policy_acceptances.all()
    assert acceptance.version == version
    card = page.locator(".acceptance").filter(has_text=version.label)
    assert card.count() == 1
    name, content = visit.download(card.get_by_role("link", name=exact(ja("Receipt (PDF)"))))
    assert name.endswith(".pdf"), name
    text = squash(pdf_text(content))
    assert squash(version.label) in text
    assert str(acceptance.receipt_id) in text or squash(str(acceptance.receipt_id)) in text
    return {"student": student, "acceptance": acceptance}


# 2. Grant, receipt, withdraw in as many clicks, the timeline --------------------------------
def consent_setup():
    analysis, provision = opt_in_purposes()
    from tests.factories import PurposeFactory, UserFactory, accept

    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    student = UserFactory(email="kenta.suzuki@example.jp", display_name="鈴木 健太")
    accept(student, version)
    employer = EmployerFactory(name="株式会社さくら商事", name_en="Sakura Trading Co., Ltd.")
    return student, employer, analysis


def consent_journey(visit: Visit, site) -> dict:
    student, employer, purpose = consent_setup()
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")

    clicks = {"grant": 0, "withdraw": 0}
    page.get_by_role("link", name=exact(ja("Decide company by company"))).click()
    visit.check("consents")
    card = page.locator(f"#employer-{employer.pk}")
    title = purpose.title_ja
    turn_on = card.get_by_role("button", name=re.compile(re.escape(ja("Turn on")) + ".*" + title))
    with page.expect_navigation():
        turn_on.click()
        clicks["grant"] += 1
    visit.check("consent-granted")
    card = page.locator(f"#employer-{employer.pk}")
    assert card.get_by_role("status").count() == 1
    state = card.locator(".consent-row").filter(has_text=title).locator(".consent-state")
    assert ja("On") in state.inner_text()
    [grant] = ConsentEvent.objects.filter(student=student, employer=employer)
    assert grant.action == ConsentEvent.Action.GRANT

    # The receipt, from the confirmation on the card
    card.get_by_role("link", name=exact(ja("Your receipt"))).click()
    visit.check("grant-receipt")
    assert str(grant.receipt_id) in page.inner_text("main")
    name, content = visit.download(page.get_by_role("link", name=exact(ja("Receipt (PDF)"))))
    assert str(grant.receipt_id) in pdf_text(content)
    page.get_by_role("link", name=exact(ja("Change this decision"))).click()
    visit.check("consents-again", shot=False)

    card = page.locator(f"#employer-{employer.pk}")
    turn_off = card.get_by_role("button", name=re.compile(re.escape(ja("Turn off")) + ".*" + title))
    with page.expect_navigation():
        turn_off.click()
        clicks["withdraw"] += 1
    visit.check("consent-withdrawn")
    card = page.locator(f"#employer-{employer.pk}")
    state = card.locator(".consent-row").filter(has_text=title).locator(".consent-state")
    assert ja("Off") in state.inner_text()
    assert clicks["withdraw"] == clicks["grant"] == 1

    card.get_by_role("link", name=exact(ja("History with this company"))).click()
    visit.check("timeline")
    entries = page.locator(".timeline-entry")
    assert entries.count() == 2
    events = list(ConsentEvent.objects.filter(student=student, employer=employer))
    assert [e.action for e in events] == ["grant", "withdraw"] or sorted(
        e.action for e in events
    ) == ["grant", "withdraw"]
    with translation.override("ja"):
        grant_label = str(ConsentEvent.Action.GRANT.label)
        withdraw_label = str(ConsentEvent.Action.WITHDRAW.label)
    assert withdraw_label in entries.nth(0).inner_text()  # newest first
    assert grant_label in entries.nth(1).inner_text()
    # The student's receipts were emailed too.
    site.wait_for(
        lambda: len(site.mail.received(student.email)) >= 2, "both consent receipts emailed"
    )
    return {"student": student, "employer": employer, "events": events, "clicks": clicks}


# 3. A deletion request, answered by the company from its email -----------------------------
def deletion_journey(visit: Visit, site, company: Visit) -> dict:
    from tests.disclosure.test_dispatch import student_with_recipients

    student, [employer] = student_with_recipients(("ja",))
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")
    page.get_by_role("navigation").get_by_role("link", name=exact(ja("My requests"))).click()
    visit.check("requests")
    page.get_by_role("link", name=exact(ja("Make a request"))).first.click()
    visit.check("request-form")
    with translation.override("ja"):
        deletion = str(DataRequest.Kind.DELETION.label)
    page.get_by_role("radio", name=re.compile(re.escape(deletion), re.I)).check()
    page.get_by_label(ja("Message (optional)")).fill(
        "応募はすべて終わりました。私のデータを消してください。"
    )
    file_request(visit)
    request = DataRequest.objects.get(student=student)
    assert visit.path == f"/requests/{request.reference}/", page.url
    visit.check("request-filed")

    # The company's clerk opens the link in its email, in a browser of their own.
    messages = wait_for_mail(
        site.mail, lambda m: "/r/" in text_of(m) and m["To"] != student.email, "to the company"
    )
    [message] = messages
    [link] = [url for url in links_in(message) if "/r/" in url]
    assert link.startswith(site.url), link
    company.goto(link)
    company.check("answer-page")
    company.page.get_by_role("radio", name=exact(ja("We have deleted the data"))).check()
    company.page.locator("input[name=attestation]").check()
    company.page.get_by_label(ja("Name of the person responsible for this answer")).fill(
        "人事部 田中 一郎"
    )
    with company.page.expect_navigation():
        company.page.get_by_role("button", name=exact(ja("Send this answer"))).click()
    company.check("answer-recorded")
    task = RecipientTask.objects.get(request=request)
    assert task.status == RecipientTask.Status.ANSWERED

    # The student sees it completed, and downloads the certificate once it is made.
    site.wait_for(
        lambda: RequestFile.objects.filter(
            request=request, kind=RequestFile.Kind.CERTIFICATE_PDF
        ).exists(),
        "the completion certificate",
    )
    page.reload()
    visit.check("request-completed")
    with translation.override("ja"):
        completed = str(DataRequest.Status.COMPLETED.label)
        certificate_label = str(RequestFile.Kind.CERTIFICATE_PDF.label)
    assert completed in page.locator(".request-status").inner_text()
    name, content = visit.download(
        page.locator(".downloads").get_by_role(
            "link", name=re.compile(re.escape(certificate_label), re.I)
        )
    )
    text = squash(pdf_text(content))
    assert squash(request.reference) in text
    assert squash("田中") in text
    return {"student": student, "request": request, "employer": employer}


# 4. A disclosure request: the PDF and the JSON ----------------------------------------------
def disclosure_journey(visit: Visit, site) -> dict:
    from tests.disclosure.test_dispatch import student_with_recipients

    student, [employer] = student_with_recipients(("en",))
    page = visit.page
    sign_in(visit, student.email)
    visit.check("dashboard")
    page.get_by_role("link", name=exact(ja("Make a request"))).click()
    visit.check("request-form")
    with translation.override("ja"):
        disclosure = str(DataRequest.Kind.DISCLOSURE.label)
    page.get_by_role("radio", name=re.compile(re.escape(disclosure), re.I)).check()
    file_request(visit)
    request = DataRequest.objects.get(student=student)
    visit.check("request-filed")

    site.wait_for(
        lambda: (
            RequestFile.objects.filter(
                request=request,
                kind__in=[RequestFile.Kind.REPORT_PDF, RequestFile.Kind.REPORT_JSON],
            ).count()
            == 2
        ),
        "the disclosure report",
    )
    page.reload()
    visit.check("request-report-ready")
    with translation.override("ja"):
        pdf_label = str(RequestFile.Kind.REPORT_PDF.label)
        json_label = str(RequestFile.Kind.REPORT_JSON.label)
    downloads = page.locator(".downloads")
    name, content = visit.download(
        downloads.get_by_role("link", name=re.compile(re.escape(pdf_label), re.I))
    )
    text = squash(pdf_text(content))
    assert squash(request.reference) in text
    assert squash(student.display_name) in text
    name, content = visit.download(
        downloads.get_by_role("link", name=re.compile(re.escape(json_label), re.I))
    )
    assert name.endswith(".json"), name
    report = json_of(content)
    assert student.email in content.decode()
    assert report
    return {"student": student, "request": request}


# 5. Support staff: the overdue task, from the dashboard to a new link -----------------------
def overdue_setup(site):
    """A deletion request filed 20 days ago whose company never answered; the daily sweep
    has escalated it. A support agent in the "Support" group the roles migration makes."""
    from datetime import timedelta

    import time_machine
    from django.contrib.auth.models import Group, Permission
    from django.utils import timezone

    from backoffice.roles import SUPPORT, roles_apply
    from disclosure.services import request_file, requests_sweep
    from tests.disclosure.test_dispatch import student_with_recipients
    from tests.factories import UserFactory

    student, [employer] = student_with_recipients(("ja",))
    with time_machine.travel(timezone.now() - timedelta(days=20), tick=False):
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    [first] = wait_for_mail(
        site.mail, lambda m: "/r/" in text_of(m), "with the company's first link"
    )
    site.wait_for(
        lambda: RecipientTask.objects.filter(request=request, status="sent").exists(),
        "the company's task sent",
    )
    requests_sweep()  # the beat's daily run: past its due date, the company is escalated
    task = RecipientTask.objects.get(request=request)
    assert task.overdue
    # Transactional tests empty every table between tests, the migration's groups too.
    if not Group.objects.filter(name=SUPPORT).exists():
        roles_apply(group_model=Group, permission_model=Permission)
    agent = UserFactory(
        email="support.agent@example.jp", display_name="サポート 担当", is_staff=True
    )
    agent.groups.add(Group.objects.get(name=SUPPORT))
    # Staff open the admin only with a second factor: the agent's authenticator app.
    agent.totp_secret = totp_activate(agent)
    assert not agent.is_superuser
    return request, task, employer, agent, first


def support_journey(visit: Visit, site, company: Visit) -> dict:
    from disclosure.models import RequestEvent

    request, task, employer, agent, first = overdue_setup(site)
    old_link = next(url for url in links_in(first) if "/r/" in url)
    page = visit.page

    # The admin's sign-in is the site's (allauth's), then the code from the agent's app.
    visit.goto("/admin/")
    assert visit.path == "/accounts/login/", page.url
    visit.check("admin-sign-in")
    page.locator("input[name=login]").fill(agent.email)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign In"))).click()
    enter_totp_code(visit, agent.totp_secret)
    assert visit.path == "/admin/", page.url
    visit.check("dashboard")

    overdue = page.locator(".bo-figure").filter(has_text=ja("company tasks overdue"))
    assert overdue.locator(".bo-number").inner_text().strip() == "1"
    overdue.get_by_role("link").click()
    assert visit.path == "/admin/disclosure/recipienttask/", page.url
    visit.check("overdue-tasks")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    rows.first.get_by_role("link", name=request.reference).click()
    assert visit.path == f"/admin/disclosure/datarequest/{request.pk}/change/", page.url
    visit.check("request")

    page.get_by_role("link", name=exact(ja("Resend the link"))).click()
    visit.check("resend-form")
    reason = "期限を過ぎても回答がないため、電話で確認のうえ再送しました。"
    with site.mail._lock:
        earlier = list(site.mail.messages)
    page.get_by_label(ja("Reason")).fill(reason)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Send a new link"))).click()
    assert visit.path == f"/admin/disclosure/datarequest/{request.pk}/change/", page.url
    visit.check("request-after-resend")
    assert page.locator(".messagelist .success").count() == 1

    # The request's timeline shows it, by whom and why.
    with translation.override("ja"):
        resent = str(RequestEvent.Kind.LINK_RESENT.label)
    entry = page.locator("tr").filter(has_text=resent)
    assert entry.count() == 1, page.inner_text("#content-main")[:3000]
    assert reason in entry.inner_text()
    assert RequestEvent.objects.filter(request=request, kind="link_resent").count() == 1

    # The company gets a new link; the old one no longer opens the answer form.
    contact = employer.primary_contact.email
    [second] = wait_for_mail(
        site.mail,
        lambda m: m not in earlier and m["To"] == contact and "/r/" in text_of(m),
        f"to {contact} with a new link",
    )
    [new_link] = {url for url in links_in(second) if "/r/" in url}
    assert new_link != old_link
    company.goto(new_link)
    company.check("answer-page-new-link")
    assert company.page.get_by_role("button", name=exact(ja("Send this answer"))).count() == 1
    company.page.goto(old_link)
    company.check("answer-page-old-link")
    assert company.page.get_by_role("button", name=exact(ja("Send this answer"))).count() == 0
    return {"request": request, "task": task, "agent": agent}


# 7. A new staff member: signed in, sent to set up an authenticator app, then the admin ------
def staff_mfa_setup_journey(visit: Visit, site) -> dict:
    """A staff account without a second factor signs in, is told the back office needs one,
    sets up an authenticator app from the secret the page shows, sees its recovery codes and
    reaches the dashboard."""
    from allauth.mfa.models import Authenticator

    from tests.factories import StaffFactory

    staff = StaffFactory(mfa=False, email="new.staff@example.jp")
    page = visit.page

    visit.goto("/admin/")
    assert visit.path == "/accounts/login/", page.url
    visit.check("admin-sign-in")
    page.locator("input[name=login]").fill(staff.email)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Sign In"))).click()
    # No second factor yet: not the admin, the page that says why.
    assert visit.path == "/admin/two-factor-required/", page.url
    visit.check("two-factor-required")
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text().strip() == ja("Set up two-factor authentication")

    with page.expect_navigation():
        page.get_by_role("link", name=exact(ja("Set up an authenticator app"))).click()
    reauthenticate_if_asked(visit)
    assert visit.path == "/accounts/2fa/totp/activate/", page.url
    visit.check("activate-totp")
    secret = page.locator("#authenticator_secret").input_value()
    assert len(secret) >= 16, secret
    page.locator("input[name=code]").fill(totp_code(secret))
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Activate"))).click()

    assert visit.path == "/accounts/2fa/recovery-codes/", page.url
    visit.check("recovery-codes")
    shown = page.locator("#recovery_codes").input_value().split()
    stored = Authenticator.objects.get(user=staff, type=Authenticator.Type.RECOVERY_CODES)
    assert shown and shown == stored.wrap().get_unused_codes()

    with page.expect_navigation():
        page.get_by_role("link", name=exact(ja("Back office"))).click()
    assert visit.path == "/admin/", page.url
    visit.check("dashboard")
    assert page.locator(".bo-figure").count() > 0
    return {"staff": staff, "secret": secret, "recovery_codes": shown}


# 8. Sign in with the job site's account, then accept the policy ------------------------------
def sso_journey(visit: Visit, site, job_site) -> dict:
    """A student of the job site presses "Sign in with 求人サイト / Job site" on the sign-in
    page, signs in at the site (the stand-in provider, tests/sso/provider), comes back signed
    in to a new portal account and is asked for the policy first."""
    version = published_version(label="2026.04")
    sub = job_site.user("misaki", email="misaki@example.jp", name="佐藤 美咲")
    page = visit.page

    visit.goto("/accounts/login/")
    visit.check("sign-in")
    with page.expect_navigation():
        # (a plain name: exact()'s pattern would carry the label's "/" into Playwright's)
        label = ja("Sign in with %(name)s") % {"name": "求人サイト / Job site"}
        page.get_by_role("button", name=label, exact=True).click()
    # The job site's own sign-in page (not the portal's: it is not checked like ours).
    assert page.url.startswith(job_site.url + "/login/"), page.url
    page.get_by_label("Username").fill("misaki")
    page.get_by_label("Password").fill(SSO_PASSWORD)
    with page.expect_navigation(url=re.compile(re.escape(site.url))):
        page.get_by_role("button", name="Sign in to the job site").click()

    assert visit.path == "/policies/accept/", page.url
    visit.check("accept-policy")
    page.get_by_role("checkbox").check()
    with page.expect_navigation():
        page.get_by_role("button", name=exact(ja("Accept this privacy policy"))).click()
    visit.check("after-accepting")
    student = User.objects.get(email="misaki@example.jp")
    return {"student": student, "sub": sub, "version": version}
