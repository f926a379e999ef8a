"""The consent page's company cards, written for each page shown.

Every grant and withdrawal reloads the page. A card shows a few facts: the company, each
switch's state and last change, why the company is listed, what it received. Its HTML is
written by card_html.py in about 4-7 µs, from what every card of the page shares (worked out
once per process) and its own facts.

Nothing is kept in the cache (session 24). Keeping a page of cards together (session 23)
cost more than it saved: in Redis, as production runs, reading a kept page took 0.23 ms,
missing it 0.12 ms and storing it 0.26 ms, against 0.22 ms to write its 50 cards; in the
local cache, a first view paid 0.1 ms for pickling the page's 46 kB of Japanese text to
store it. And a wave's students would have kept hundreds of MB of cards in Redis.
"""

import functools
from dataclasses import dataclass
from datetime import datetime

from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from consent.models import ConsentEvent
from consent.views import card_html

# A switch never used: off, no last change.
NEVER = (False, None, None)


@dataclass(frozen=True)
class Switch:
    """One purpose as every card of the page shows it."""

    code: str
    title: str  # the wording's title, the company's name still a placeholder
    listed: bool  # by the version the student accepted: off otherwise, and cannot go on


@dataclass
class Card:
    """What one card shows: the facts its HTML follows from."""

    pk: int
    name: str
    # (granted, the last event's action, its time) for each switch, in the page's order
    states: tuple[tuple[bool, str | None, datetime | None], ...]
    applied: bool
    received: tuple[int, datetime | None]  # provisions to the company, and the last one
    granted: bool  # any switch on
    changed: ConsentEvent | None = None  # the change just made, shown with its receipt
    html: SafeString | None = None


class CardPage:
    """What every card of one page shares."""

    def __init__(self, switches: list[Switch]):
        self.switches = switches
        self.urls, self.words, self.actions = _shared(
            tuple(switches),
            get_language(),
            timezone.get_current_timezone_name(),
            get_script_prefix(),
        )

    @cached_property
    def markup(self) -> dict:
        return card_html.shared_markup(self)

    @cached_property
    def write_datetime(self):
        return card_html.datetime_writer()

    @cached_property
    def write_date(self):
        return card_html.datetime_writer("DATE_FORMAT")

    def reasons(self, card: Card) -> str:
        shown = (
            ("applied", card.applied),
            ("received", card.received[0] > 0),
            ("granted", card.granted),
        )
        return " · ".join(self.words[reason] for reason, why in shown if why)


@functools.lru_cache(maxsize=256)
def _shared(switches: tuple[Switch, ...], language: str, zone: str, prefix: str) -> tuple:
    """The links, the words and the actions' names that a page's cards share, worked out
    once per process for each set of switches, language, time zone and URL prefix (the words
    translated in `language`, the one active): 0.1 ms a page."""
    urls = _urls_under(prefix)
    words = {
        "on": _("On"),
        "off": _("Off"),
        "turn_on": _("Turn on"),
        "turn_off": _("Turn off"),
        "not_listed": _("Not in the privacy policy you accepted: see above."),
        "history": _("History with this company"),
        "applied": _("you applied"),
        "received": _("received your data"),
        "granted": _("you gave consent"),
        "last_change": _("Last change: %(action)s on %(date)s"),
    }
    actions = {value: str(label) for value, label in ConsentEvent.Action.choices}
    return urls, words, actions


@functools.cache
def _urls_under(prefix: str) -> dict[str, str]:
    """The card's links as format strings, reversed once: a reverse() per button was a
    tenth of the page's time with 50 companies."""
    employer, code = 4611686018427387904, "purpose-code"  # no real id or code looks so
    return {
        name: reverse(f"consent:{name}", args=args)
        .replace(str(employer), "{employer}")
        .replace(code, "{code}")
        for name, args in (
            ("grant", [employer, code]),
            ("withdraw", [employer, code]),
            ("timeline", [employer]),
        )
    }


def cards_render(page: CardPage, cards: list[Card]) -> None:
    """Give each card its `html`."""
    for card in cards:
        card.html = mark_safe(card_html.card_html(page, card))  # noqa: S308 - escaped there
