"""One company's card on the consent page, written here rather than by a template.

A student's first view renders the card of every company they are connected to (30 in
`make bench`), and Django's template engine took about 0.12 ms a card, resolving some sixty
variables and tags each: most of the first view's time (docs/performance.md, "The consents
page"). Joining the same markup here takes about a tenth of that. The words come translated
once a page (cards.py); what every card of a page writes alike (the marks, the buttons, each
switch's title and links) is escaped once a page (`shared_markup`), and only what is the
card's own (its company's name, its reasons, its dates) once a card, through `escape` (the
standard library's, which Django's own calls after more bookkeeping than the value needs).

Its buttons belong to the section's form in consent_list.html, which holds the CSRF token:
nothing here is the request's own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.formats import date_format, get_format
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from consent.models import EMPLOYER_PLACEHOLDERS

if TYPE_CHECKING:
    from consent.views.cards import Card, CardPage


# Where the company's name goes in a switch's title, and the date in "Last change: …": no
# escaped text holds these characters.
NAME, DATE = "\x00", "\x01"


@dataclass(frozen=True)
class SwitchMarkup:
    title: str  # escaped, the company's name at NAME
    plain: str  # as worded, unescaped
    names_company: bool  # the title names the company: the button's label needs no name
    grant: str  # the button's address, escaped, the company's id at {employer}
    withdraw: str
    listed: bool


def card_html(page: CardPage, card: Card) -> str:
    markup = page.markup
    pk, name = card.pk, escape(card.name)
    html = [
        f'<article class="card employer" id="employer-{pk}" '
        f'aria-labelledby="employer-{pk}-name">\n'
        f'<h3 id="employer-{pk}-name">{name}</h3>\n'
    ]
    reasons = page.reasons(card)
    if reasons:
        provided, last = card.received
        if provided:
            reasons += " — " + ngettext(
                "%(counter)s provision, last on %(last)s",
                "%(counter)s provisions, last on %(last)s",
                provided,
            ) % {"counter": provided, "last": page.write_date(last)}
        html.append(f'<p class="muted">{escape(reasons)}</p>\n')
    if card.changed:
        html.append(_changed(card.changed))
    html.append('<ul class="consent-rows">\n')
    for switch, (granted, action, at) in zip(markup["switches"], card.states, strict=True):
        title = switch.title.replace(NAME, name)
        # The button's words for a screen reader name the company, once.
        if switch.names_company or card.name in switch.plain:
            label = title
        else:
            label = f"{title} — {name}"
        html.append(markup["on_row" if granted else "off_row"])
        html.append(f"<strong>{title}</strong></p>\n")
        if action:
            changed = markup["last_change"][action].replace(DATE, escape(page.write_datetime(at)))
            html.append(f'<p class="muted small">{changed}</p>\n')
        if not switch.listed:
            html.append(markup["not_listed"])
        address = (switch.withdraw if granted else switch.grant).replace("{employer}", str(pk))
        html.append(
            f'<button formaction="{address}" {markup["turn_off" if granted else "turn_on"]}'
            f'<span class="visually-hidden">: {label}</span></button></li>\n'
        )
    history = markup["history_url"].replace("{employer}", str(pk))
    html.append(f'</ul>\n<p><a href="{history}">{markup["history"]}</a></p>\n</article>\n')
    return "".join(html)


def shared_markup(page: CardPage) -> dict:
    """What every card of a page writes alike, escaped once a page rather than once a card
    (escaping was a quarter of a card's time)."""
    words, urls = page.words, page.urls
    on = f'<span class="state on"><span aria-hidden="true">●</span> {escape(words["on"])}</span>'
    off = f'<span class="state off"><span aria-hidden="true">○</span> {escape(words["off"])}</span>'
    switches = []
    for switch in page.switches:
        title = switch.title
        for placeholder in EMPLOYER_PLACEHOLDERS:
            title = title.replace(placeholder, NAME)
        grant, withdraw = (
            escape(urls[name].replace("{code}", switch.code)) for name in ("grant", "withdraw")
        )
        switches.append(
            SwitchMarkup(escape(title), switch.title, NAME in title, grant, withdraw, switch.listed)
        )
    return {
        "switches": switches,
        "on_row": f'<li class="consent-row on">\n<p class="consent-state">{on} ',
        "off_row": f'<li class="consent-row off">\n<p class="consent-state">{off} ',
        "not_listed": (
            '<p class="notice warning small-notice"><span aria-hidden="true">⚠︎</span> '
            f"{escape(words['not_listed'])}</p>\n"
        ),
        "turn_on": f'class="button primary">{escape(words["turn_on"])}',
        "turn_off": f'class="button secondary">{escape(words["turn_off"])}',
        "last_change": {
            action: escape(words["last_change"] % {"action": label, "date": DATE})
            for action, label in page.actions.items()
        },
        "history": escape(words["history"]),
        "history_url": escape(urls["timeline"]),
    }


def _changed(event) -> str:
    """The receipt of the change just made, on its company's card."""
    if event.action == "grant":
        said = _("Turned on: %(purpose)s.") % {"purpose": event.title}
    else:
        said = _("Turned off: %(purpose)s. No further provision can happen.") % {
            "purpose": event.title
        }
    when = local_datetime(event.occurred_at)
    receipt = event.receipt_id
    links = (
        (reverse("consent:event_receipt", args=[receipt]), _("Your receipt"), ""),
        (reverse("consent:event_receipt_pdf", args=[receipt]), _("PDF"), " download"),
        (reverse("consent:event_receipt_json", args=[receipt]), _("JSON"), " download"),
    )
    anchors = " · ".join(
        f'<a href="{escape(url)}"{download}>{escape(text)}</a>' for url, text, download in links
    )
    return (
        '<div class="notice success" role="status">\n'
        f'<p><span aria-hidden="true">✓</span> {escape(said)} {escape(when)}</p>\n'
        f"<p>{anchors} — {escape(_('A copy was emailed to you.'))}</p>\n"
        "</div>\n"
    )


# --- Times, as Django's `date` filter writes them, faster ------------------------------------
#
# A card says when each switch last changed. Django's formatter parses the format and looks
# up the time zone for every time (28 µs each: half of a card's cost); the formats the
# portal's languages use for these are made of a few fields, compiled once here, the month's
# short name (English's "j M Y, H:i": "5 Jan 2019") among them. A format with anything else
# (Django's own English "N j, Y, P": "Jan. 5, 2019, noon") is left to Django.

_FIELDS = {
    "Y": "{0.year}",
    "n": "{0.month}",
    "m": "{0.month:02d}",
    "j": "{0.day}",
    "M": "{1}",  # the month's short name in the active language, as Django's "M"
    "d": "{0.day:02d}",
    "G": "{0.hour}",
    "H": "{0.hour:02d}",
    "i": "{0.minute:02d}",
    "s": "{0.second:02d}",
}


@functools.cache
def _compiled(fmt: str) -> str | None:
    """The format as one `str.format` template of a datetime, or None if it has more than
    _FIELDS (any other ASCII letter, or a backslash escape)."""
    parts = []
    for char in fmt:
        if char in _FIELDS:
            parts.append(_FIELDS[char])
        elif char == "\\" or (char.isascii() and char.isalpha()):
            return None
        else:
            parts.append(char.replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


def local_datetime(value) -> str:
    """`value` in the current time zone, as `date_format(..., "DATETIME_FORMAT")` writes it."""
    return datetime_writer()(value)


def datetime_writer(format_name: str = "DATETIME_FORMAT"):
    """local_datetime (or the same for `format_name`) for the current language and time
    zone, looked up once: a page of cards writes many times in the same ones."""
    zone = timezone.get_current_timezone()
    fmt = get_format(format_name)
    template = _compiled(fmt)
    if template is None:
        return lambda value: date_format(timezone.localtime(value, zone), fmt)
    months = _short_months(get_language())

    def write(value) -> str:
        local = timezone.localtime(value, zone)
        return template.format(local, months[local.month])

    return write


@functools.lru_cache(maxsize=16)
def _short_months(language: str) -> tuple[str, ...]:
    """Django's "M" for each month (index 1-12) in `language`, the one active."""
    return ("", *(str(MONTHS_3[month]).title() for month in range(1, 13)))
