"""One company's card on the consent page, written here rather than by a template.

A student's first view renders the card of every company they are connected to (30 in
`make bench`), and Django's template engine took about 0.12 ms a card, resolving some sixty
variables and tags each: most of the first view's time (docs/performance.md, "The consents
page"). Joining the same markup here takes about a quarter of that. What the card says is
decided in cards.py (CardPage.rows, CardPage.reasons, the words translated once a page);
this only writes it, every value through `escape` (the standard library's, which Django's
own calls after more bookkeeping than the value needs). The cache keys include this file's
bytes, so a change here is never served from cards kept by the old markup.

Its buttons belong to the section's form in consent_list.html, which holds the CSRF token:
nothing here is the request's own.
"""

from __future__ import annotations

import functools
from html import escape
from typing import TYPE_CHECKING

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, get_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

if TYPE_CHECKING:
    from consent.views.cards import Card, CardPage


def card_html(page: CardPage, card: Card) -> str:
    markup = page.markup
    pk = card.pk
    html = [
        f'<article class="card employer" id="employer-{pk}" '
        f'aria-labelledby="employer-{pk}-name">\n'
        f'<h3 id="employer-{pk}-name">{escape(card.name)}</h3>\n'
    ]
    reasons = page.reasons(card)
    if reasons:
        provided, last = card.received
        if provided:
            reasons += " — " + ngettext(
                "%(counter)s provision, last on %(last)s",
                "%(counter)s provisions, last on %(last)s",
                provided,
            ) % {"counter": provided, "last": date_format(timezone.localtime(last), "DATE_FORMAT")}
        html.append(f'<p class="muted">{escape(reasons)}</p>\n')
    if card.changed:
        html.append(_changed(card.changed))
    html.append('<ul class="consent-rows">\n')
    for row in page.rows(card):
        granted = row["granted"]
        html.append(markup["on_row" if granted else "off_row"])
        html.append(f"<strong>{escape(row['title'])}</strong></p>\n")
        if row["changed_on"]:
            html.append(f'<p class="muted small">{escape(row["changed_on"])}</p>\n')
        if not row["listed"]:
            html.append(markup["not_listed"])
        html.append(
            f'<button formaction="{escape(row["action"])}" '
            f"{markup['turn_off' if granted else 'turn_on']}"
            f'<span class="visually-hidden">: {escape(row["label"])}</span></button></li>\n'
        )
    history = page.urls["timeline"].format(employer=pk)
    html.append(f'</ul>\n<p><a href="{escape(history)}">{markup["history"]}</a></p>\n</article>\n')
    return "".join(html)


def shared_markup(words: dict[str, str]) -> dict[str, str]:
    """What every card of a page writes alike, escaped once a page rather than once a card
    (escaping was a quarter of a card's time)."""
    on = f'<span class="state on"><span aria-hidden="true">●</span> {escape(words["on"])}</span>'
    off = f'<span class="state off"><span aria-hidden="true">○</span> {escape(words["off"])}</span>'
    return {
        "on_row": f'<li class="consent-row on">\n<p class="consent-state">{on} ',
        "off_row": f'<li class="consent-row off">\n<p class="consent-state">{off} ',
        "not_listed": (
            '<p class="notice warning small-notice"><span aria-hidden="true">⚠︎</span> '
            f"{escape(words['not_listed'])}</p>\n"
        ),
        "turn_on": f'class="button primary">{escape(words["turn_on"])}',
        "turn_off": f'class="button secondary">{escape(words["turn_off"])}',
        "history": escape(words["history"]),
    }


def _changed(event) -> str:
    """The receipt of the change just made, on its company's card (never cached)."""
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
# portal's languages use for these are made of a few fields, compiled once here. A format
# with anything else (English's "N j, Y, P": month names, "a.m.", "noon") is left to Django.

_FIELDS = {
    "Y": lambda t: str(t.year),
    "n": lambda t: str(t.month),
    "m": lambda t: f"{t.month:02d}",
    "j": lambda t: str(t.day),
    "d": lambda t: f"{t.day:02d}",
    "G": lambda t: str(t.hour),
    "H": lambda t: f"{t.hour:02d}",
    "i": lambda t: f"{t.minute:02d}",
    "s": lambda t: f"{t.second:02d}",
}


@functools.cache
def _compiled(fmt: str) -> tuple | None:
    """The format as literal strings and field functions, or None if it has more than
    _FIELDS (any other ASCII letter, or a backslash escape)."""
    parts = []
    for char in fmt:
        if char in _FIELDS:
            parts.append(_FIELDS[char])
        elif char == "\\" or (char.isascii() and char.isalpha()):
            return None
        else:
            parts.append(char)
    return tuple(parts)


def local_datetime(value) -> str:
    """`value` in the current time zone, as `date_format(..., "DATETIME_FORMAT")` writes it."""
    return datetime_writer()(value)


def datetime_writer():
    """local_datetime for the current language and time zone, looked up once: a page of
    cards writes many times in the same ones."""
    zone = timezone.get_current_timezone()
    fmt = get_format("DATETIME_FORMAT")
    compiled = _compiled(fmt)
    if compiled is None:
        return lambda value: date_format(timezone.localtime(value, zone), fmt)

    def write(value) -> str:
        local = timezone.localtime(value, zone)
        return "".join(part if isinstance(part, str) else part(local) for part in compiled)

    return write
