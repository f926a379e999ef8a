"""The student's per-employer consent pages: decide, see receipts, follow each employer."""

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consent.decorators import data_rights_page
from consent.models import (
    Consent,
    ConsentEvent,
    PolicyVersion,
    Provision,
    Purpose,
    fill_employer,
    fill_placeholder,
    newest_acceptance_sql,
)
from consent.receipts import event_receipt_json as build_event_receipt_json
from consent.receipts import event_receipt_pdf as build_event_receipt_pdf
from consent.services import (
    ConsentRefused,
    consent_grant,
    consent_withdraw,
    consent_withdraw_all,
    policy_acceptance_due,
)
from consent.views.cards import NEVER, Card, CardPage, Switch, cards_render
from portal.models import ActivityRecord, Employer, Language
from portal.shared.files import attachment_response
from portal.shared.http import client_ip, page_language
from portal.shared.pagination import page_with_count

EMPLOYERS_PER_PAGE = 20


def _back(request: HttpRequest, employer_id: int | None = None, event=None) -> str:
    """Back to the consent page, keeping the search and page, at the employer's card, where
    the receipt of the change just made is shown."""
    params = {k: request.POST[k] for k in ("q", "page") if request.POST.get(k)}
    if event is not None:
        params["changed"] = str(event.receipt_id)
    url = reverse("consent:consent_list")
    if params:
        url += "?" + urlencode(params)
    if employer_id:
        url += f"#employer-{employer_id}"
    return url


# What connects a student to companies, in one statement (SQLite and PostgreSQL alike): each
# consent state with its last event, the provisions to each company (how many, the last),
# and the companies applied to, each row with the company's names. Three ORM querysets did
# the same in three times the time, most of it Django building them: they were a third of
# the page shown again (docs/performance.md, "The consents page").
_CONNECTIONS_SQL = f"""
SELECT 'state', c.employer_id, e.name, e.name_en, c.purpose_id, c.granted, ev.action,
       ev.occurred_at, NULL
FROM {Consent._meta.db_table} c
JOIN {Employer._meta.db_table} e ON e.id = c.employer_id
JOIN {ConsentEvent._meta.db_table} ev ON ev.id = c.event_id
WHERE c.student_id = %s
UNION ALL
SELECT 'provided', p.employer_id, e.name, e.name_en, NULL, NULL, NULL, MAX(p.provided_at),
       COUNT(*)
FROM {Provision._meta.db_table} p
JOIN {Employer._meta.db_table} e ON e.id = p.employer_id
WHERE p.student_id = %s
GROUP BY p.employer_id, e.name, e.name_en
UNION ALL
SELECT 'applied', a.employer_id, e.name, e.name_en, NULL, NULL, NULL, NULL, NULL
FROM {ActivityRecord._meta.db_table} a
JOIN {Employer._meta.db_table} e ON e.id = a.employer_id
WHERE a.student_id = %s AND a.kind = %s
GROUP BY a.employer_id, e.name, e.name_en
"""  # noqa: S608 - the tables' names from the models; every value a parameter


_PURPOSE_COLUMNS = list(Purpose._meta.concrete_fields)
_LISTS = PolicyVersion.purposes.field  # the version's purposes (a many-to-many table)

# The student's newest acceptance (the order of PolicyAcceptance.objects.latest_for): its
# version and that version's wording of each purpose; and every opt-in purpose, with whether
# that version lists it. One row at least (the purposes' columns empty when there are none),
# where three ORM queries spent a quarter of the page's time being built.
_POLICY_SQL = f"""
SELECT newest.version_id, newest.purposes_wording,
       {", ".join(f"p.{f.column}" for f in _PURPOSE_COLUMNS)},
       EXISTS (SELECT 1 FROM {_LISTS.m2m_db_table()} vp
               WHERE vp.{_LISTS.m2m_column_name()} = newest.version_id
                 AND vp.{_LISTS.m2m_reverse_name()} = p.id)
FROM (SELECT 1 AS one) AS base
LEFT JOIN ({newest_acceptance_sql("a.version_id", "v.purposes_wording")}) AS newest ON 1 = 1
LEFT JOIN {Purpose._meta.db_table} p ON p.requires_opt_in = %s
ORDER BY p.code
"""  # noqa: S608 - the tables' and columns' names from the models; every value a parameter


def _policy_side(student) -> tuple[PolicyVersion | None, list[Purpose]]:
    """The version the student last accepted (only its wording of the purposes is read),
    and the opt-in purposes, each with `listed`: whether that version lists it."""
    with connection.cursor() as cursor:
        cursor.execute(_POLICY_SQL, [student.pk, True])
        rows = cursor.fetchall()
    version_id, wording = rows[0][0], rows[0][1]
    version = None
    if version_id is not None:
        if isinstance(wording, str):  # SQLite's JSON is text; psycopg decodes jsonb
            wording = json.loads(wording)
        version = PolicyVersion(pk=version_id, purposes_wording=wording)
    names = [f.attname for f in _PURPOSE_COLUMNS]
    purposes = []
    for row in rows:
        if row[2] is None:  # no opt-in purpose at all
            continue
        purpose = Purpose.from_db(connection.alias, names, row[2:-1])
        purpose.listed = version is not None and bool(row[-1])
        purposes.append(purpose)
    return version, purposes


def _aware(value) -> datetime | None:
    """A time from a raw row: aware already (PostgreSQL), or SQLite's UTC text or naive."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _connections(student) -> tuple[dict, dict, dict, set]:
    """What connects the student to companies, in one query: (pk, name, English name) by
    pk; (granted, the last event's action and time) by (company, purpose); (provisions,
    the last one's time) by company; the companies applied to."""
    connected, states, received, applied = {}, {}, {}, set()
    with connection.cursor() as cursor:
        cursor.execute(
            _CONNECTIONS_SQL,
            [student.pk, student.pk, student.pk, ActivityRecord.Kind.APPLICATION],
        )
        rows = cursor.fetchall()
    for kind, pk, name, name_en, purpose_id, granted, action, at, count in rows:
        connected[pk] = (pk, name, name_en)
        if kind == "state":
            states[pk, purpose_id] = (bool(granted), action, _aware(at))
        elif kind == "provided":
            received[pk] = (count, _aware(at))
        else:
            applied.add(pk)
    return connected, states, received, applied


def _others(connected: set[int], query: str):
    """The active companies not connected to the student, matching the search (either
    name, ignoring case, as `icontains`), by name: `fetch(offset, limit)` for
    page_with_count, each row (pk, name, English name, how many match). Written as SQL, as
    the connections are: the ORM took longer building this query than the database took
    answering it (docs/performance.md, "The consents page")."""
    where, params = ["e.is_active = %s"], [True]
    if connected:
        where.append(f"e.id NOT IN ({', '.join(['%s'] * len(connected))})")
        params += sorted(connected)
    if query:
        # The backend's own icontains: UPPER(...) LIKE UPPER(...) on PostgreSQL, LIKE with
        # an escape on SQLite; the term's % and _ escaped as Django escapes them.
        like = connection.operators["icontains"] % "%s"
        cast = connection.ops.lookup_cast("icontains", "CharField")
        where.append(f"({cast % 'e.name'} {like} OR {cast % 'e.name_en'} {like})")
        pattern = f"%{connection.ops.prep_for_like_query(query)}%"
        params += [pattern, pattern]
    sql = (
        f"SELECT e.id, e.name, e.name_en, COUNT(*) OVER () FROM {Employer._meta.db_table} e "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY e.name, e.id LIMIT %s OFFSET %s"
    )

    def fetch(offset: int, limit: int) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, limit, offset])
            return cursor.fetchall()

    return fetch


def _joined(cards: list[Card]) -> SafeString:
    # Each card's html is escaped already (card_html.py).
    return mark_safe("".join(card.html for card in cards))  # noqa: S308


@login_required
@data_rights_page
def consent_list(request: HttpRequest) -> HttpResponse:
    """Every company the student is connected to, then a page of the others, one card each.

    What a purpose means (its description and data items, as the version the student
    accepted words them) is said once at the top: it is the same for every company, and
    was most of a card's 4 kB when each card repeated it. A card holds the company, a
    switch per purpose and when it last changed. One form per section carries the CSRF
    token and the search; each button posts to its own address (formaction), so the page
    works without JavaScript as before. Rows come as values, not model objects: the page
    runs four queries whatever the student's history, and builds no object per company
    or switch.
    """
    student = request.user
    language = page_language()
    version, purposes = _policy_side(student)
    connected, states, received, applied = _connections(student)
    live = {employer_id for (employer_id, _p), (granted, *_e) in states.items() if granted}
    # Connected by a grant, a provision or an application: a withdrawn grant alone is no
    # connection, as it was not before.
    relevant_ids = applied | set(received) | live

    changed = None
    if request.GET.get("changed"):
        try:
            changed = (
                ConsentEvent.objects.filter(student=student, receipt_id=request.GET["changed"])
                .select_related("purpose", "policy_version")
                .first()
            )
        except ValidationError:
            changed = None
        if changed is not None:
            changed.title = fill_employer(
                changed.policy_version.purpose_wording(changed.purpose, language),
                changed.employer,
                language,
            )["title"]
    query = request.GET.get("q", "").strip()
    page = page_with_count(
        _others(relevant_ids, query), request.GET.get("page"), EMPLOYERS_PER_PAGE
    )

    # Each purpose's words, once: as the accepted version published them, or, for one it
    # does not list, the purpose's own (a switch that cannot be turned on, and says why).
    wordings = {
        purpose.pk: version.purpose_wording(purpose, language)
        if purpose.listed
        else {
            "title": purpose.title(language),
            "description": purpose.description(language),
            "data_items": purpose.data_items(language),
        }
        for purpose in purposes
    }
    explained = [
        {
            "code": purpose.code,
            "in_policy": purpose.listed,
            **fill_placeholder(wordings[purpose.pk], _("the company you choose")),
        }
        for purpose in purposes
    ]
    card_page = CardPage([Switch(p.code, wordings[p.pk]["title"], p.listed) for p in purposes])

    def card(pk: int, name_ja: str, name_en: str) -> Card:
        return Card(
            pk=pk,
            name=name_en if language == Language.EN and name_en else name_ja,
            states=tuple(states.get((pk, purpose.pk), NEVER) for purpose in purposes),
            applied=pk in applied,
            received=received.get(pk, (0, None)),
            granted=pk in live,
            changed=changed if changed and changed.employer_id == pk else None,
        )

    relevant = sorted((card(*connected[pk]) for pk in relevant_ids), key=lambda c: c.name)
    others = [card(*company) for company in page.object_list]
    cards_render(card_page, relevant + others)
    return render(
        request,
        "consent/consent_list.html",
        {
            "newest": version,
            "due": policy_acceptance_due(student=student),
            "explained": explained,
            # Each section's cards joined here: the template's loop over 50 of them cost
            # more than the join.
            "sections": [
                {"others": False, "cards": relevant, "html": _joined(relevant)},
                {"others": True, "cards": others, "html": _joined(others)},
            ],
            "page": page,
            "query": query,
            "live_count": len([1 for granted, *_e in states.values() if granted]),
        },
    )


def _change_message(request: HttpRequest, events: list[ConsentEvent]) -> None:
    for event in events:
        receipt = reverse("consent:event_receipt", args=[event.receipt_id])
        if event.action == ConsentEvent.Action.GRANT:
            text = _("Turned on: %(purpose)s for %(employer)s.")
        else:
            text = _("Turned off: %(purpose)s for %(employer)s.")
        language = page_language()
        wording = event.policy_version.purpose_wording(event.purpose, language)
        messages.success(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                text
                % {
                    "purpose": fill_employer(wording, event.employer, language)["title"],
                    "employer": event.employer.display_name(language),
                },
                receipt,
                _("Your receipt"),
            ),
        )


@login_required
@require_POST
@data_rights_page
def grant(request: HttpRequest, employer_id: int, purpose_code: str) -> HttpResponse:
    employer = get_object_or_404(Employer, pk=employer_id)
    purpose = get_object_or_404(Purpose, code=purpose_code)
    try:
        event = consent_grant(
            student=request.user,
            employer=employer,
            purpose=purpose,
            language=page_language(),
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except ConsentRefused as refused:
        if refused.code == "purpose_not_in_policy":
            messages.error(
                request,
                format_html(
                    '{} <a href="{}">{}</a>',
                    refused.messages[0],
                    reverse("consent:accept"),
                    _("Read the newer version"),
                ),
            )
        else:
            messages.error(request, refused.messages[0])
        return redirect(_back(request, employer.pk))
    return redirect(_back(request, employer.pk, event))


@login_required
@require_POST
@data_rights_page
def withdraw(request: HttpRequest, employer_id: int, purpose_code: str) -> HttpResponse:
    employer = get_object_or_404(Employer, pk=employer_id)
    purpose = get_object_or_404(Purpose, code=purpose_code)
    event = consent_withdraw(
        student=request.user,
        employer=employer,
        purpose=purpose,
        language=page_language(),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    if event is None:
        messages.info(request, _("That was already off; nothing changed."))
    return redirect(_back(request, employer.pk, event))


@login_required
@require_POST
@data_rights_page
def withdraw_all(request: HttpRequest) -> HttpResponse:
    events = consent_withdraw_all(
        student=request.user,
        language=page_language(),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    if not events:
        messages.info(request, _("You had no consent turned on; nothing changed."))
    else:
        messages.success(
            request,
            _(
                "Everything is turned off: %(count)s consents withdrawn. Companies that "
                "received your data are being told to stop using it. Your receipts are below "
                "and were emailed to you."
            )
            % {"count": len(events)},
        )
        _change_message(request, events)
    return redirect(_back(request))


@login_required
@data_rights_page
def timeline(request: HttpRequest, employer_id: int) -> HttpResponse:
    """Every grant, withdrawal, lapse and provision for one employer, newest first."""
    employer = get_object_or_404(Employer, pk=employer_id)
    events = ConsentEvent.objects.filter(student=request.user, employer=employer).select_related(
        "purpose", "policy_version"
    )
    provisions = Provision.objects.filter(student=request.user, employer=employer).select_related(
        "purpose", "consent_event__policy_version"
    )
    language = page_language()
    entries = [
        {
            "kind": "event",
            "at": e.occurred_at,
            "item": e,
            "title": fill_employer(
                e.policy_version.purpose_wording(e.purpose, language), employer, language
            )["title"],
        }
        for e in events
    ] + [
        {
            "kind": "provision",
            "at": p.provided_at,
            "item": p,
            "title": fill_employer(
                p.consent_event.policy_version.purpose_wording(p.purpose, language),
                employer,
                language,
            )["title"],
        }
        for p in provisions
    ]
    entries.sort(key=lambda entry: (entry["at"], entry["item"].pk), reverse=True)
    return render(
        request,
        "consent/timeline.html",
        {"employer": employer, "name": employer.display_name(language), "entries": entries},
    )


def _own_event(request: HttpRequest, receipt_id) -> ConsentEvent:
    return get_object_or_404(
        ConsentEvent.objects.select_related("employer", "purpose", "policy_version", "student"),
        receipt_id=receipt_id,
        student=request.user,
    )


@login_required
@data_rights_page
def event_receipt(request: HttpRequest, receipt_id) -> HttpResponse:
    event = _own_event(request, receipt_id)
    language = page_language()
    return render(
        request,
        "consent/event_receipt.html",
        {
            "event": event,
            "name": event.employer.display_name(language),
            "wording": fill_employer(
                event.policy_version.purpose_wording(event.purpose, language),
                event.employer,
                language,
            ),
        },
    )


@login_required
@data_rights_page
def event_receipt_pdf(request: HttpRequest, receipt_id) -> HttpResponse:
    event = _own_event(request, receipt_id)
    return attachment_response(
        content=build_event_receipt_pdf(event),
        filename=f"consent-receipt-{event.receipt_id}.pdf",
        content_type="application/pdf",
    )


@login_required
@data_rights_page
def event_receipt_json(request: HttpRequest, receipt_id) -> HttpResponse:
    event = _own_event(request, receipt_id)
    body = json.dumps(build_event_receipt_json(event), ensure_ascii=False, indent=2)
    return attachment_response(
        content=body.encode("utf-8"),
        filename=f"consent-receipt-{event.receipt_id}.json",
        content_type="application/json",
    )
