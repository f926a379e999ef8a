"""The header (portal/templatetags/site_header.py), kept per language, page and kind of
user: the navigation still marks the page the student is on, speaks the page's language
and offers the back office to staff alone; the switcher has the page's language chosen."""

import re

import pytest
from django.urls import reverse

from tests.factories import StaffFactory, student_who_accepted

pytestmark = pytest.mark.django_db


def nav(html: str) -> str:
    return re.search(r'<nav class="wrap site-nav".*?</nav>', html, re.S).group(0)


def current(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" aria-current="page"', nav(html))


def test_each_page_marks_its_own_link_and_the_nav_speaks_its_language(client, settings):
    student, _ = student_who_accepted()
    client.force_login(student)
    pages = {
        "dashboard": reverse("dashboard"),
        "consent:consent_list": reverse("consent:consent_list"),
        "consent:policy_list": reverse("consent:policy_list"),
        "disclosure:request_list": reverse("disclosure:request_list"),
    }
    for language, words in (("ja", "同意"), ("en", "Consent per company")):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        for name, address in pages.items():
            html = client.get(address).content.decode()
            assert current(html) == [address], (language, name)
            assert words in nav(html)
            # The switcher offers both, the page's own chosen.
            chosen = re.findall(r'<option value="(\w+)" lang="\w+" selected>', html)
            assert chosen == [language]
            assert 'value="ja" lang="ja"' in html and 'value="en" lang="en"' in html
    # The request form is among "My requests", though not the list itself.
    html = client.get(reverse("disclosure:request_new")).content.decode()
    assert current(html) == [reverse("disclosure:request_list")]


def test_the_back_office_link_is_for_staff_alone_on_the_same_page(client):
    staff = StaffFactory()
    client.force_login(staff)
    assert reverse("admin:index") in nav(
        client.get(reverse("consent:policy_list")).content.decode()
    )

    student, _ = student_who_accepted()
    client.force_login(student)
    html = client.get(reverse("consent:policy_list")).content.decode()
    assert reverse("admin:index") not in nav(html)
