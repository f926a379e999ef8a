"""A large list's pages by position in a real Chromium, at a phone's width and a desktop's
(issue 20): a Support agent goes Next, Last and back by Previous through a ledger, every page
through axe-core, the 320 px reflow and the Content-Security-Policy."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission

from backoffice.roles import SUPPORT, roles_apply
from portal.models import ActivityRecord
from tests.e2e.journeys import PASSWORD, enter_totp_code, exact, ja, sign_in
from tests.factories import ActivityRecordFactory, UserFactory, totp_activate

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql


def _rows(page) -> list[int]:
    """The records listed, by id. (Each row's link also carries the list's position, so
    that the record's page leads back to the same page of the list.)"""
    hrefs = page.locator("#result_list tbody tr th a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return [int(re.search(r"/activityrecord/(\d+)/change/", href).group(1)) for href in hrefs]


def test_support_pages_through_a_ledger_by_its_links(browse, site, viewport, monkeypatch):
    monkeypatch.setattr(admin.site._registry[ActivityRecord], "list_per_page", 10)
    student = UserFactory()
    ActivityRecordFactory.create_batch(25, student=student)
    if not Group.objects.filter(name=SUPPORT).exists():
        roles_apply(group_model=Group, permission_model=Permission)
    agent = UserFactory(email="support.pages@example.jp", is_staff=True)
    agent.groups.add(Group.objects.get(name=SUPPORT))
    secret = totp_activate(agent)
    visit = browse("support")
    page = visit.page
    sign_in(visit, agent.email, PASSWORD)
    enter_totp_code(visit, secret)
    visit.check("signed-in")

    ids = list(ActivityRecord.objects.order_by("-pk").values_list("pk", flat=True))
    paginator = page.locator("p.paginator")

    visit.goto("/admin/portal/activityrecord/")
    visit.check("ledger-first-page")
    assert _rows(page) == ids[:10]
    paginator.get_by_role("link", name=exact(ja("Next") + " ›")).click()
    visit.check("ledger-next-page")
    assert _rows(page) == ids[10:20]
    assert "p=after" in page.url

    paginator.get_by_role("link", name=exact(ja("Last") + " »")).click()
    visit.check("ledger-last-page")
    assert _rows(page) == ids[-10:]
    paginator.get_by_role("link", name=exact("‹ " + ja("Previous"))).click()
    visit.check("ledger-previous-page")
    assert _rows(page) == ids[-20:-10]
    # Five rows are left before it: fewer than a page, so Previous shows the first page.
    paginator.get_by_role("link", name=exact("‹ " + ja("Previous"))).click()
    visit.check("ledger-back-to-the-first-page")
    assert _rows(page) == ids[:10]
    assert paginator.get_by_role("link", name=exact("« " + ja("First"))).count() == 0
