"""Provision of a student's data to an employer, and the consent check that precedes it."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import ApiClient, Consent, Provision, Purpose
from portal.models import Employer, User
from portal.shared.locking import retry_on_deadlock, student_lock

# Clocks differ between the pipeline and the portal; a provision "a few seconds from now"
# is a skew, not a forecast.
CLOCK_SKEW = timedelta(minutes=5)


class ProvisionRefused(ValidationError):
    pass


@retry_on_deadlock
def provision_record(
    *,
    student: User,
    employer: Employer,
    purpose: Purpose,
    data_items: str,
    provided_at: datetime | None = None,
    first_provided_at: datetime | None = None,
    client: ApiClient | None = None,
    reference: str = "",
) -> Provision:
    """Record that the student's data was given to the employer, if a valid grant allows it.

    The grant row is locked while the record is made, so a withdrawal committed a moment
    earlier is always seen. A bulk record gives the first and the last time. With a
    `reference`, a retried call returns the record the first call made.
    """
    now = timezone.now()
    provided_at = provided_at or now
    if client is not None and client.employer_id not in (None, employer.pk):
        raise ProvisionRefused(
            _("This key may only record its own company's provisions."), code="scope"
        )
    if not data_items.strip():
        raise ProvisionRefused(_("Say which data items were provided."), code="data_items")
    if provided_at > now + CLOCK_SKEW:
        raise ProvisionRefused(_("A provision cannot be recorded in the future."), code="future")
    if first_provided_at is not None and first_provided_at > provided_at:
        raise ProvisionRefused(
            _("The first provision must not be after the last."), code="first_after_last"
        )
    if reference:
        existing = Provision.objects.filter(recorded_by=client, reference=reference).first()
        if existing is not None:
            if (existing.student_id, existing.employer_id, existing.purpose_id) != (
                student.pk,
                employer.pk,
                purpose.pk,
            ):
                raise ProvisionRefused(
                    _("This reference was already used for another record."), code="reference"
                )
            return existing
    try:
        with transaction.atomic():
            student_lock(student_id=student.pk)  # first, as every change of the student's
            state = (
                Consent.objects.select_for_update()
                .filter(student=student, employer=employer, purpose=purpose, granted=True)
                .select_related("event")
                .first()
            )
            if state is None:
                raise ProvisionRefused(
                    _("There is no valid consent from this student for this company and purpose."),
                    code="no_valid_grant",
                )
            earliest = first_provided_at or provided_at
            if earliest < state.event.occurred_at - CLOCK_SKEW:
                raise ProvisionRefused(
                    _("The provision is dated before the consent it would rely on."),
                    code="before_grant",
                )
            return Provision.objects.create(
                student=student,
                employer=employer,
                purpose=purpose,
                consent_event=state.event,
                data_items=data_items.strip()[:500],
                provided_at=provided_at,
                first_provided_at=first_provided_at,
                recorded_at=now,
                recorded_by=client,
                reference=reference,
            )
    except IntegrityError:
        # The same reference recorded concurrently: answer with the first record.
        return Provision.objects.get(recorded_by=client, reference=reference)


# The name DESIGN.md gives it.
record_provision = provision_record


class CheckResult(NamedTuple):
    allowed: bool
    reason: str  # "granted", "no_valid_grant", "unknown_student", "unknown_purpose", "out_of_scope"
    event_id: int | None = None
    granted_at: datetime | None = None
    policy_version: str | None = None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# What Purpose.code (an ASCII SlugField) can hold. Anything else is no purpose, and is not
# sent to the database at all: PostgreSQL refuses a NUL in text and in JSON (a 500, found by
# the fuzzer), and UTF-8 cannot encode a lone surrogate that a JSON "\ud800" escape makes.
_PURPOSE_CODE = re.compile(r"[-a-zA-Z0-9_]{1,60}")


def purpose_code_possible(code: str) -> bool:
    return _PURPOSE_CODE.fullmatch(code) is not None


# PostgreSQL: one query, one row per triple in order: the student's pk (NULL: unknown), the
# purpose's pk (NULL: unknown) and the live grant, if any. The triples travel as one JSON
# parameter (parsed by the server, not quoted element by element in Python). LATERAL with
# LIMIT 1 is never flattened into a join, so each triple costs one index probe per table:
# with 1,000 triples against 100,000 students the planner otherwise prefers a sequential
# scan of every student, five times slower. The grant's time comes back as epoch seconds
# (float8, loaded in C) rather than a timestamptz parsed by Python, 1,000 times a batch.
_CHECK_SQL = """
SELECT s.id, p.id, g.event_id, g.epoch, g.label
FROM ROWS FROM (json_to_recordset(%s::json) AS (s uuid, e bigint, p text))
     WITH ORDINALITY AS q(s, e, p, n)
LEFT JOIN LATERAL (
    SELECT id FROM portal_user WHERE public_id = q.s LIMIT 1
) s ON true
LEFT JOIN consent_purpose p ON p.code = q.p
LEFT JOIN LATERAL (
    SELECT c.event_id, extract(epoch FROM e.occurred_at)::float8 AS epoch, v.label
    FROM consent_consent c
    JOIN consent_consentevent e ON e.id = c.event_id
    JOIN consent_policyversion v ON v.id = e.policy_version_id
    WHERE c.student_id = s.id AND c.employer_id = q.e AND c.purpose_id = p.id AND c.granted
    LIMIT 1
) g ON true
ORDER BY q.n
"""


def _public_id(value) -> str | None:
    """The canonical text of a UUID, or None for something that is not one."""
    text = str(value).lower()
    if _CANONICAL_UUID.fullmatch(text):
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _check_rows_postgresql(public_ids, employer_ids, codes) -> list[tuple]:
    triples = [
        {"s": s, "e": e, "p": p} for s, e, p in zip(public_ids, employer_ids, codes, strict=True)
    ]
    with connection.cursor() as cursor:
        try:
            parameter = orjson.dumps(triples).decode()
        except TypeError:  # an unpaired surrogate orjson will not write: escaped instead
            parameter = json.dumps(triples)
        cursor.execute(_CHECK_SQL, [parameter])
        return [
            (student, purpose, event, _from_epoch(epoch), label)
            for student, purpose, event, epoch, label in cursor.fetchall()
        ]


def _check_rows_portable(public_ids, employer_ids, codes) -> list[tuple]:
    """The same rows in three queries (students, purposes, grants), for SQLite."""
    students = {
        str(public_id): pk
        for public_id, pk in User.objects.filter(
            public_id__in={p for p in public_ids if p}
        ).values_list("public_id", "pk")
    }
    purposes = dict(Purpose.objects.values_list("code", "pk"))
    grants = {
        row[:3]: row[3:]
        for row in Consent.objects.filter(
            student_id__in=set(students.values()),
            employer_id__in={e for e in employer_ids if e is not None},
            granted=True,
        ).values_list(
            "student_id",
            "employer_id",
            "purpose_id",
            "event_id",
            "event__occurred_at",
            "event__policy_version__label",
        )
    }
    rows = []
    for public_id, employer_id, code in zip(public_ids, employer_ids, codes, strict=True):
        student, purpose = students.get(public_id), purposes.get(code)
        rows.append((student, purpose, *grants.get((student, employer_id, purpose), NO_GRANT)))
    return rows


NO_GRANT = (None, None, None)


def consent_check(
    *, triples: list[tuple[str, int, str]], client: ApiClient | None = None
) -> list[CheckResult]:
    """Whether each (student public id, employer id, purpose code) may be processed now.

    A fixed number of queries, whatever the batch size: one on PostgreSQL, three elsewhere.
    Valid grants are exactly the `Consent` rows with granted=True (lapses are applied when
    a version is accepted), so no per-row policy lookup is needed. An employer's key asking
    about another employer is answered out_of_scope without looking anything up.
    """
    scope = None if client is None else client.employer_id
    public_ids, employer_ids, codes = [], [], []
    known: dict[str, str | None] = {}  # a batch names few purposes: each checked once
    for public_id, employer_id, code in triples:
        if scope is None or employer_id == scope:
            public_ids.append(_public_id(public_id))
            employer_ids.append(employer_id)
            if code not in known:
                known[code] = code if _PURPOSE_CODE.fullmatch(code) else None
            codes.append(known[code])
        else:
            public_ids.append(None)
            employer_ids.append(None)
            codes.append(None)
    if connection.vendor == "postgresql":
        rows = _check_rows_postgresql(public_ids, employer_ids, codes)
    else:
        rows = _check_rows_portable(public_ids, employer_ids, codes)
    results = []
    for employer_id, (student, purpose, event, granted_at, label) in zip(
        employer_ids, rows, strict=True
    ):
        if employer_id is None:
            results.append(CheckResult(False, "out_of_scope"))
        elif student is None:
            results.append(CheckResult(False, "unknown_student"))
        elif purpose is None:
            results.append(CheckResult(False, "unknown_purpose"))
        elif event is None:
            results.append(CheckResult(False, "no_valid_grant"))
        else:
            results.append(CheckResult(True, "granted", event, granted_at, label))
    return results
