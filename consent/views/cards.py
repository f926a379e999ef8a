"""The consent page's company cards, a page of them kept in the cache under what they show.

Every grant and withdrawal reloads the page. A card shows a few facts: the company, each
switch's state and last change, why the company is listed, what it received. Its HTML is
written by card_html.py in about 7 µs. A page's cards are kept together, for
PAGE_CACHE_SECONDS, under a digest of every card's facts and of what the cards share (the
purposes' titles, the links, the translations, the markup, Django's version, the language
and the time zone): a page shown again unchanged costs one cache read. A page holding the
change just made (with its receipt) is never kept.

Cards are not kept one by one (session 23): keying, looking up and storing a card cost more
than writing it, in the local cache and in Redis alike, and the entries of every student's
cards for an hour would be hundreds of megabytes in a wave. A page kept together is 70 kB at
50 cards, so it is kept for ten minutes: it serves a page shown again soon
(docs/operations.md, "The cache", sizes it). If the cache fails, every card is written, as
without it.
"""

import functools
import hashlib
import logging
import pickle
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import django
from django.conf import settings
from django.core.cache import cache
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from consent.models import ConsentEvent
from consent.views import card_html

logger = logging.getLogger(__name__)

PAGE_CACHE_SECONDS = 600

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
    """What every card of one page shares, and the digest of it."""

    def __init__(self, switches: list[Switch]):
        self.switches = switches
        self.urls, self.words, self.actions, self.digest = _shared(
            tuple(switches),
            get_language(),
            timezone.get_current_timezone_name(),
            get_script_prefix(),
        )

    # Worked out only when a card is rendered, not for a page whose cards are all kept.
    @cached_property
    def markup(self) -> dict:
        return card_html.shared_markup(self)

    @cached_property
    def write_datetime(self):
        return card_html.datetime_writer()

    @cached_property
    def write_date(self):
        return card_html.datetime_writer("DATE_FORMAT")

    def key(self, *cards: Card) -> str:
        """The cache key of a page's cards kept together."""
        facts = [(c.pk, c.name, c.states, c.applied, c.received, c.granted) for c in cards]
        # Pickled rather than repr'd, in half the time (the times' repr is slow): equal
        # bytes are equal facts, so a key is never shared by different pages; objects that
        # are equal but shared differently would only miss.
        digest = hashlib.blake2b(self.digest.encode(), digest_size=16)
        digest.update(pickle.dumps(facts, protocol=5))
        # Short: the local-memory cache checks every character of a key in Python.
        return f"consent-page:{digest.hexdigest()}"

    def reasons(self, card: Card) -> str:
        shown = (
            ("applied", card.applied),
            ("received", card.received[0] > 0),
            ("granted", card.granted),
        )
        return " · ".join(self.words[reason] for reason, why in shown if why)


@functools.lru_cache(maxsize=256)
def _shared(switches: tuple[Switch, ...], language: str, zone: str, prefix: str) -> tuple:
    """The links, the words, the actions' names and the digest of all that a page's cards
    share, worked out once per process for each set of switches, language, time zone and
    URL prefix (the words translated in `language`, the one active): 0.1 ms a page."""
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
    shared = (_shape(), language, zone, switches, urls, words, actions)
    return urls, words, actions, hashlib.sha256(repr(shared).encode()).hexdigest()


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


@functools.cache
def _shape() -> str:
    """What a card's HTML depends on besides the page, the same for the whole process."""
    digest = hashlib.sha256(django.get_version().encode())
    digest.update(Path(card_html.__file__).read_bytes())
    for folder in settings.LOCALE_PATHS:
        for catalog in sorted(Path(folder).glob("*/LC_MESSAGES/*.mo")):
            digest.update(catalog.read_bytes())
    return digest.hexdigest()


def cards_render(page: CardPage, cards: list[Card]) -> None:
    """Give each card its `html`: the page's, as kept, or written (and the page kept)."""
    together = None if any(card.changed for card in cards) else page.key(*cards)
    try:
        kept = cache.get(together) if together else None
    except Exception:
        logger.warning("cache unavailable: the consent page writes every card", exc_info=True)
        kept = together = None
    if kept is not None:
        for card, html in zip(cards, kept, strict=True):
            card.html = mark_safe(html)  # noqa: S308 - card_html's output, as kept
        return
    for card in cards:
        card.html = mark_safe(card_html.card_html(page, card))  # noqa: S308 - escaped there
    if together:
        try:
            cache.set(together, [str(card.html) for card in cards], PAGE_CACHE_SECONDS)
        except Exception:
            logger.warning("cache unavailable: the consent page's cards not kept", exc_info=True)
