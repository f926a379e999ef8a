"""Journey 6: the language switcher turns every page of journeys 1-3 to English and back.

The same journeys as test_journeys.py, run with `toggle_language`: on each page the
switcher is used to choose English (the page stays where it is; `<html lang>` becomes "en";
its heading and text change; it passes axe-core in English too) and then Japanese again (the
page is as it was). The steps after it still find their controls by their Japanese names,
so the page really is back in Japanese.
"""

import pytest

from tests.e2e.journeys import consent_journey, deletion_journey, signup_journey

# What this adds to the journeys (test_journeys.py, on the PostgreSQL pass), each page in
# the other language and back, is the templates' and the catalogues'; on CI's SQLite pass it
# is also the browser's walk through sign-up, consent and deletion with tasks in-process.
pytestmark = pytest.mark.same_on_every_database


def test_every_page_of_signing_up_switches_to_english_and_back(browse, site):
    visit = browse("student")
    visit.toggle_language = True
    signup_journey(visit, site)
    assert len(visit.timings) >= 7


def test_every_page_of_the_consent_journey_switches_to_english_and_back(browse, site):
    visit = browse("student")
    visit.toggle_language = True
    result = consent_journey(visit, site)
    assert len(visit.timings) >= 7
    # The choice is remembered on the account: emails and PDFs follow it.
    result["student"].refresh_from_db()
    assert result["student"].language == "ja"


def test_every_page_of_the_deletion_journey_switches_to_english_and_back(browse, site):
    student, company = browse("student"), browse("company")
    student.toggle_language = company.toggle_language = True
    deletion_journey(student, site, company)
    assert len(student.timings) >= 6 and len(company.timings) == 2
