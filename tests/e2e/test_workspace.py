"""Journey 10, the 2019 wave from the company's side (issue 19), in a real Chromium: a
company holding 200 students' deletion requests asks for its workspace link on the public
page, follows the link in the email and presses its one button, answers the 150 of the
first wave "deleted" in one go (the "filed until" filter, then "all matching", the
attestation ticked once), downloads the other 50 as CSV, fills them in with one row it
cannot answer (an unknown reference), sees the preview list that row as left out, and
confirms. Every student's request page then shows the company's answer, and each request,
completed, has its certificate.

The requests are filed by the filing service, not through 200 browser filings. Every page
the contact and the students see passes axe-core (and, at a phone's width, reflows at
320 px), in Japanese and in English: the contact of a Japanese company works in Japanese,
the English-speaking one chooses English on the first page, and each, once done, reads on
in the other language (the switcher on the confirmation, a page answering a POST).

The full wave runs at phone+Japanese, on the PostgreSQL pass (on SQLite, where each answer
makes its certificate PDF, about 0.2 s, inside the answering page, a wave of 60). The other
three (desktop+English, phone+English,
desktop+Japanese) run the same journey with a wave of 8 (6, then 2); every page is checked
in both languages at both widths, the list's second page only in the full run.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone, translation

from consent.services import consent_grant, provision_record
from disclosure.models import DataRequest, RecipientTask, RequestFile
from disclosure.services import request_file
from disclosure.views.workspace import PER_PAGE
from portal.models import EmailMessage, Employer
from tests.e2e.browser import Visit, links_in, pdf_text, squash, wait_for_mail
from tests.e2e.journeys import exact, sign_in
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.smtp import text_of

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql

SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 斎藤 清水"
GIVEN_NAMES = "美咲 健太 さくら 翔 陽菜 大輝 結衣 蓮 葵 悠真"
CONTACT = "privacy@mirai-talent.example.jp"
# What a row the company cannot answer looks like: a reference of no request of its own.
UNKNOWN_REFERENCE = "R-190306-0000C0FFEE"
# Answering 150 tasks on SQLite makes their 150 certificates before the page answers: about
# 30 s on an idle machine, several times that on two cores shared with other test runs.
ANSWERING = 300_000  # ms


def say(language: str, message: str, plural: str = "", count: int = 0, **values) -> str:
    """The words a page in `language` shows for a msgid (and its plural for `count`), with
    the placeholders filled in."""
    with translation.override(language):
        if plural:
            return translation.ngettext(message, plural, count) % {"count": count, **values}
        return translation.gettext(message) % values if values else translation.gettext(message)


@dataclass
class Wave:
    employer: Employer
    first: list[DataRequest]  # filed ten days ago
    rest: list[DataRequest]  # filed two days ago

    @property
    def requests(self) -> list[DataRequest]:
        return self.first + self.rest


def wave_setup(*, language: str, first: int, rest: int) -> Wave:
    """A company that received `first + rest` students' data, each of whom filed a
    deletion request: `first` of them ten days ago, the others two days ago."""
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    employer = EmployerFactory(
        name="株式会社みらい人材",
        name_en="Mirai Talent K.K.",
        language=language,
        contact_email=CONTACT,
    )
    surnames, given = SURNAMES.split(), GIVEN_NAMES.split()
    students = []
    for number in range(first + rest):
        name = f"{surnames[number % len(surnames)]} {given[number // len(surnames) % len(given)]}"
        student = UserFactory(display_name=name, email=f"student{number:03d}@example.jp")
        accept(student, version)
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(
            student=student,
            employer=employer,
            purpose=provision,
            data_items="閲覧履歴の分析結果（内定辞退率）",
        )
        students.append(student)
    filed = {}
    now = timezone.now()
    for wave, group, days_ago in (("first", students[:first], 10), ("rest", students[first:], 2)):
        with time_machine.travel(now - timedelta(days=days_ago), tick=True):
            filed[wave] = [
                request_file(student=student, kind=DataRequest.Kind.DELETION) for student in group
            ]
    return Wave(employer=employer, first=filed["first"], rest=filed["rest"])


def region(visit: Visit, heading: str):
    """A section of the page, by its heading."""
    return visit.page.get_by_role("region", name=exact(heading))


def workspace_journey(company: Visit, site, wave: Wave, language: str) -> dict:
    page = company.page
    total, first, rest = len(wave.requests), len(wave.first), len(wave.rest)

    def matches(count: int, language: str = language) -> str:
        return say(language, "%(count)s request matches.", "%(count)s requests match.", count)

    # Asking for the link, on the public page (in Japanese until the contact chooses).
    company.goto("/company/")
    company.check("ask-for-a-link")
    if language != "ja":
        company.choose_language(language)
        company.check(f"ask-for-a-link-{language}")
    page.get_by_label(say(language, "Your work email address")).fill(CONTACT)
    with page.expect_navigation():
        page.get_by_role("button", name=exact(say(language, "Email me a link"))).click()
    assert company.path == "/company/sent/", page.url
    company.check("link-sent")

    [message] = wait_for_mail(
        site.mail, lambda m: m["To"] == CONTACT and "/company/w/" in text_of(m), f"to {CONTACT}"
    )
    assert wave.employer.display_name(language) in text_of(message)
    [link] = [url for url in links_in(message) if "/company/w/" in url]
    assert link.startswith(site.url), link

    # The link's page changes nothing (a link scanner that fetches it spends nothing): its
    # one button opens the workspace, and the link is then spent.
    company.goto(link)
    assert company.path.startswith("/company/w/"), page.url
    company.check("open-the-workspace")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(say(language, "Open the workspace"))).click()
    # The workspace: every waiting request, 50 a page.
    assert company.path == "/company/workspace/", page.url  # the token is not left in the bar
    assert company.language() == language
    company.check("workspace")
    if company.viewport == "desktop":
        # The list takes the page's width (squeezed into a form's, dates broke a word a line).
        table, heading = (page.locator(part).bounding_box() for part in ("table.data", "main h1"))
        assert table["width"] >= heading["width"] - 1, (table, heading)
    assert matches(total) in page.inner_text("main")
    assert page.locator("table.data tbody tr").count() == min(total, PER_PAGE)
    if total > PER_PAGE:
        with page.expect_navigation():
            page.get_by_role("navigation", name=say(language, "Pages")).get_by_role(
                "link", name=re.compile(re.escape(say(language, "Next")))
            ).click()
        company.check("workspace-page-2")

    # The first wave, in one go: filed until the day it was filed, then "all matching".
    filed_until = timezone.localdate(wave.first[-1].submitted_at)
    page.get_by_label(say(language, "Filed until")).fill(filed_until.isoformat())
    with page.expect_navigation():
        page.get_by_role("button", name=exact(say(language, "Show"))).click()
    company.check("first-wave")
    assert matches(first) in page.inner_text("main")
    bulk = region(company, say(language, "Answer the requests you chose"))
    bulk.get_by_label(
        say(
            language,
            "Instead of the ticked ones: the %(count)s waiting request matching this filter "
            "(on every page)",
            "Instead of the ticked ones: all %(count)s waiting requests matching this filter "
            "(on every page)",
            first,
        )
    ).check()
    bulk.get_by_role(
        "radio", name=exact(say(language, "We have deleted the data (deletion requests)"))
    ).check()
    bulk.locator("input[name=attestation]").check()
    name, role = ("田中 一郎", "人事部長") if language == "ja" else ("Ichiro Tanaka", "HR manager")
    bulk.get_by_label(say(language, "Name of the person answering")).fill(name)
    bulk.get_by_label(say(language, "Their role")).fill(role)
    with page.expect_navigation(timeout=ANSWERING):
        bulk.get_by_role("button", name=exact(say(language, "Send this answer"))).click(
            timeout=ANSWERING
        )
    company.check("first-wave-answered")
    deleted = say(language, "deleted")
    assert say(
        language,
        "%(count)s request answered: “%(answer)s”. The student has been told by email.",
        "%(count)s requests answered: “%(answer)s”. Each student has been told by email.",
        first,
        answer=deleted,
    ) in page.inner_text("main")
    first_tasks = RecipientTask.objects.filter(request__in=wave.first)
    assert first_tasks.filter(status="answered", answer="deleted").count() == first
    assert set(first_tasks.values_list("answered_by", "answered_via")) == {
        (f"{name} ({role})", RecipientTask.Via.WORKSPACE)
    }
    assert not RecipientTask.objects.filter(request__in=wave.rest, answered_at__isnull=False)

    # The rest, by CSV: back to the list, the filter cleared, the file downloaded.
    with page.expect_navigation():
        page.get_by_role(
            "link", name=exact(say(language, "Back to your company's requests"))
        ).click()
    company.check("first-wave-done")
    assert say(language, "No request matches. Change the filter to see others.") in (
        page.inner_text("main")
    )
    page.get_by_label(say(language, "Filed until")).fill("")
    with page.expect_navigation():
        page.get_by_role("button", name=exact(say(language, "Show"))).click()
    company.check("the-rest")
    assert matches(rest) in page.inner_text("main")
    filename, content = company.download(
        page.get_by_role("link", name=exact(say(language, "Download these as CSV")))
    )
    assert filename.endswith(".csv"), filename
    assert content.startswith("\ufeff".encode())  # Excel in Japan reads it as UTF-8
    header, *rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert header[0] == say(language, "reference") and header[-2:] == [
        say(language, "answer"),
        say(language, "statement"),
    ]
    assert {row[0] for row in rows} == {r.reference for r in wave.rest}
    # The answer as the clerk would write it: the list's word, in the page's language.
    for row in rows:
        row[-2] = deleted
    rows.insert(len(rows) // 2, [UNKNOWN_REFERENCE] + [""] * (len(header) - 3) + [deleted, ""])
    filled = io.StringIO(newline="")
    csv.writer(filled).writerows([header, *rows])
    unknown_row = next(n for n, row in enumerate(rows, 2) if row[0] == UNKNOWN_REFERENCE)

    upload = region(company, say(language, "Answer with a CSV file"))
    upload.get_by_label(say(language, "The CSV file with your answers")).set_input_files(
        files=[
            {
                "name": filename,
                "mimeType": "text/csv",
                "buffer": ("\ufeff" + filled.getvalue()).encode(),
            }
        ]
    )
    upload.locator("input[name=csv-attestation]").check()
    upload.get_by_label(say(language, "Name of the person answering")).fill(name)
    upload.get_by_label(say(language, "Their role")).fill(role)
    with page.expect_navigation():
        upload.get_by_role("button", name=exact(say(language, "Check the file"))).click()
    company.check("csv-preview")
    main = page.inner_text("main")
    assert say(language, "Nothing has been recorded yet.") in main
    assert (
        say(
            language,
            "%(count)s request will be answered when you confirm; its student will be told "
            "by email.",
            "%(count)s requests will be answered when you confirm; each student will be told "
            "by email.",
            rest,
        )
        in main
    )
    left_out = region(
        company,
        say(language, "%(count)s row cannot be answered", "%(count)s rows cannot be answered", 1),
    )
    cells = left_out.locator("tbody tr td")
    assert [cells.nth(i).inner_text().strip() for i in range(cells.count())] == [
        str(unknown_row),
        UNKNOWN_REFERENCE,
        say(language, "unknown reference"),
    ]
    assert not RecipientTask.objects.filter(request__in=wave.rest, answered_at__isnull=False)

    with page.expect_navigation(timeout=ANSWERING):
        page.get_by_role(
            "button", name=exact(say(language, "Confirm: record these answers"))
        ).click(timeout=ANSWERING)
    company.check("csv-answered")
    assert say(
        language,
        "%(count)s request answered from the file. The student has been told by email.",
        "%(count)s requests answered from the file. Each student has been told by email.",
        rest,
    ) in page.inner_text("main")
    # The contact reads on in the other language: the switcher on this page, which answered
    # a POST at an address no GET opens, goes back to the list.
    other = "en" if language == "ja" else "ja"
    company.choose_language(other)
    assert company.path == "/company/workspace/", page.url
    assert company.language() == other
    company.check(f"nothing-waiting-{other}")
    assert matches(0, other) in page.inner_text("main")
    return {"answered_by": f"{name} ({role})"}


def student_sees_the_answer(visit: Visit, request: DataRequest, language: str) -> None:
    """The student, signed in, finds the company's answer on the request's page and
    downloads the certificate."""
    page = visit.page
    task = request.tasks.select_related("employer").get()
    sign_in(visit, request.student.email)
    assert visit.path == "/dashboard/", page.url
    visit.check("dashboard")
    visit.goto(f"/requests/{request.reference}/")
    if language != "ja":
        visit.choose_language(language)
    visit.check("request-completed")
    with translation.override(language):
        completed = str(DataRequest.Status.COMPLETED.label)
        certificate = str(RequestFile.Kind.CERTIFICATE_PDF.label)
    assert completed.casefold() in page.locator(".request-status").inner_text().casefold()
    card = page.locator(f"#task-{task.pk}")
    assert task.employer.display_name(language) in card.inner_text()
    assert answered(language) in card.locator(".task-state").inner_text()
    assert task.answered_by in card.inner_text()
    _name, content = visit.download(
        page.locator(".downloads").get_by_role(
            "link", name=re.compile(re.escape(certificate), re.I)
        )
    )
    text = squash(pdf_text(content))
    assert squash(request.reference) in text
    assert squash(task.answered_by) in text


def answered(language: str) -> str:
    return say(language, "Answered: %(answer)s", answer=say(language, "deleted"))


@pytest.mark.parametrize(
    ("viewport", "language", "first", "rest"),
    [
        pytest.param("phone", "ja", 150, 50, id="phone-ja-200"),
        pytest.param("desktop", "en", 6, 2, id="desktop-en-8"),
        pytest.param("phone", "en", 6, 2, id="phone-en-8"),
        pytest.param("desktop", "ja", 6, 2, id="desktop-ja-8"),
    ],
    indirect=["viewport"],
)
def test_a_company_answers_a_wave_of_deletions_in_its_workspace(
    browse, site, viewport, language, first, rest
):
    if site.worker is None and first + rest > 60:
        # SQLite (tasks in-process): each answer makes its certificate PDF inside the page,
        # so the full wave of 200 runs on the PostgreSQL pass, where the worker makes them;
        # here a wave of 60 still fills two pages of the list.
        first, rest = 45, 15
    wave = wave_setup(language=language, first=first, rest=rest)
    # On the PostgreSQL + Redis pass a worker sends the requests and the students' receipts
    # (800 emails for 200): all gone out before the contact asks for a link.
    site.wait_for(
        lambda: (
            RecipientTask.objects.filter(employer=wave.employer, status="sent").count()
            == first + rest
            and not EmailMessage.objects.exclude(status=EmailMessage.Status.SENT).exists()
        ),
        "every request sent to the company, every receipt to its student",
        timeout=300,
    )
    result = workspace_journey(browse("company"), site, wave, language)

    # Every task answered once, every request completed, each with its certificate.
    tasks = RecipientTask.objects.filter(employer=wave.employer)
    assert tasks.count() == first + rest
    assert tasks.filter(status="answered", answer="deleted").count() == first + rest
    assert set(tasks.values_list("answered_by", flat=True)) == {result["answered_by"]}
    requests = DataRequest.objects.filter(pk__in=[r.pk for r in wave.requests])
    assert requests.filter(status=DataRequest.Status.COMPLETED).count() == first + rest
    site.wait_for(
        lambda: (
            RequestFile.objects.filter(
                request__in=requests, kind=RequestFile.Kind.CERTIFICATE_PDF
            ).count()
            == first + rest
        ),
        "every request's certificate",
        timeout=300,
    )

    # Every student's request page shows the company's answer (read as each student).
    with translation.override("ja"):
        completed = str(DataRequest.Status.COMPLETED.label)
    client = Client()
    for request in wave.requests:
        client.force_login(request.student)
        response = client.get(f"/requests/{request.reference}/")
        assert response.status_code == 200, request.reference
        html = response.content.decode()
        for words in (completed, answered("ja"), result["answered_by"]):
            assert words in html, f"{request.reference}: no {words!r}"

    # Two of them in the browser: one answered in bulk, one from the file.
    for request in (wave.first[0], wave.rest[-1]):
        student_sees_the_answer(browse(f"student-{request.reference}"), request, language)
