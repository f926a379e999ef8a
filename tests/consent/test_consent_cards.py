"""The consent page's company cards as written by consent/views/card_html.py (issue 20): what a
card says in each state, its values escaped, and its times as Django's date filter writes them."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format, get_format

from consent.services import consent_grant, consent_withdraw, provision_record
from consent.views.card_html import _compiled, card_html, datetime_writer, local_datetime
from consent.views.cards import NEVER, Card, CardPage, Switch
from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted

pytestmark = pytest.mark.django_db


def _card(html: str, employer) -> str:
    return html.split(f'<article class="card employer" id="employer-{employer.pk}"')[1].split(
        "</article>"
    )[0]


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/New_York"])
def test_a_cards_times_are_written_as_djangos_date_filter_writes_them(language, zone):
    start = datetime(2019, 1, 1, 0, 0, 5, tzinfo=UTC)
    times = [start + timedelta(hours=7 * n, minutes=13 * n) for n in range(200)]
    times += [start + timedelta(days=17 * n, hours=n) for n in range(50)]  # every month
    with translation.override(language), timezone.override(zone):
        dates = datetime_writer("DATE_FORMAT")
        for at in times:
            assert local_datetime(at) == date_format(timezone.localtime(at), "DATETIME_FORMAT")
            assert dates(at) == date_format(timezone.localtime(at), "DATE_FORMAT")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_both_languages_formats_are_written_without_djangos_formatter(language):
    # English's "j M Y, H:i" was left to Django (its month names) until session 24: 20 µs a
    # card instead of 5, which made the English page 3.5 times a static page.
    with translation.override(language):
        for name in ("DATETIME_FORMAT", "DATE_FORMAT"):
            assert _compiled(get_format(name)) is not None, name


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_card_says_each_switch_its_last_change_and_what_the_company_received(client, language):
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision)
    employer = EmployerFactory(name="<b>株式会社みなと&商事</b>", name_en="")
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_grant(student=student, employer=employer, purpose=provision)
    consent_withdraw(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=analysis, data_items="閲覧履歴")
    client.force_login(student)

    html = client.get(reverse("consent:consent_list"), HTTP_ACCEPT_LANGUAGE=language)
    card = _card(html.content.decode(), employer)

    # The company's name is text, never markup, wherever the card shows it.
    assert "<b>" not in card
    assert "&lt;b&gt;株式会社みなと&amp;商事&lt;/b&gt;" in card
    assert card.count('class="consent-row on"') == 1
    assert card.count('class="consent-row off"') == 1
    grant = reverse("consent:grant", args=[employer.pk, provision.code])
    withdraw = reverse("consent:withdraw", args=[employer.pk, analysis.code])
    assert f'formaction="{withdraw}" class="button secondary"' in card
    assert f'formaction="{grant}" class="button primary"' in card
    with translation.override(language):
        received = translation.ngettext(
            "%(counter)s provision, last on %(last)s",
            "%(counter)s provisions, last on %(last)s",
            1,
        ) % {"counter": 1, "last": date_format(timezone.localdate(), "DATE_FORMAT")}
        assert received in card
        assert card.count(translation.gettext("Last change: %(action)s on %(date)s")[:4]) == 2
    assert reverse("consent:timeline", args=[employer.pk]) in card


def test_the_card_just_changed_shows_its_receipt_and_is_never_kept(client):
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision)
    employer = EmployerFactory()
    client.force_login(student)

    response = client.post(reverse("consent:grant", args=[employer.pk, analysis.code]))
    shown = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    again = client.get(reverse("consent:consent_list"), HTTP_ACCEPT_LANGUAGE="en")

    event = student.consent_events.get()
    card = _card(shown, employer)
    assert 'class="notice success" role="status"' in card
    assert reverse("consent:event_receipt", args=[event.receipt_id]) in card
    assert (
        f'href="{reverse("consent:event_receipt_pdf", args=[event.receipt_id])}" download' in card
    )
    assert "A copy was emailed to you." in card
    assert "receipt" not in _card(again.content.decode(), employer).lower()


def test_a_buttons_label_names_the_company_once_whatever_the_title_holds():
    # The label is for a screen reader: "<title> — <company>" unless the title already
    # names the company, by its placeholder or in its own words ("A&B", escaped or not).
    switches = [
        Switch("with-placeholder", "〈企業〉のための分析", True),
        Switch("naming-it", "A&B <Co> のための分析", True),
        Switch("not-naming-it", "閲覧履歴の分析", True),
    ]
    with translation.override("ja"):
        page = CardPage(switches)
        card = Card(
            pk=7,
            name="A&B <Co>",
            states=(NEVER,) * 3,
            applied=True,
            received=(0, None),
            granted=False,
        )
        html = card_html(page, card)

    labels = re.findall(r'<span class="visually-hidden">: ([^<]*)</span>', html)
    assert labels == [
        "A&amp;B &lt;Co&gt;のための分析",
        "A&amp;B &lt;Co&gt; のための分析",
        "閲覧履歴の分析 — A&amp;B &lt;Co&gt;",
    ]
    assert "<Co>" not in html
