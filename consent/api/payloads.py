"""Reading request bodies and query strings by hand: each function returns plain values or
raises ApiError naming the field that is wrong (422 for a wrong shape, 400 for a bad query
string). The OpenAPI document (consent/api/openapi.py) describes the same rules."""

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

import orjson
from django.utils.translation import gettext as _

from consent.api.endpoint import ApiError
from portal.models import ActivityRecord
from portal.shared.uuids import canonical_uuids

MAX_BATCH = 1000
DEFAULT_CHANGES_LIMIT = 500
MAX_CHANGES_LIMIT = 1000
# Ids up to 2**53 - 1: the largest whole number every JSON reader keeps exact (a float above
# it stands for several integers), and far beyond any id the database will hand out. The
# OpenAPI document says the same maximum, so a schema-valid id is never refused here.
MAX_EXACT_FLOAT = 2**53
MAX_ID = MAX_EXACT_FLOAT - 1
MAX_DATA_ITEMS = 500
MAX_REFERENCE = 100
MAX_RECORD_ID = 100
MAX_DETAIL = 300
MAX_IDEMPOTENCY_KEY = 255
ACTIVITY_KINDS = tuple(ActivityRecord.Kind.values)


# The canonical text form (RFC 9562), as the API documents it. A regular expression, not
# uuid.UUID(): it is checked 1,000 times per batch, on the hot path.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field=field)


def batch_items(body, key: str, expected: str, too_many: str) -> list:
    """The list under `key` of a batch call's body: 422 when it is not a list, 413 when it
    holds more than MAX_BATCH (`too_many` says so with %(max)d and %(count)d)."""
    items = _object(body, "").get(key)
    if not isinstance(items, list):
        raise _invalid(key, expected)
    if len(items) > MAX_BATCH:
        raise ApiError(
            413,
            "batch_too_large",
            too_many % {"max": MAX_BATCH, "count": len(items)},
            field=key,
        )
    return items


def _uuid(value, field: str) -> str:
    if isinstance(value, str) and CANONICAL_UUID.fullmatch(value):
        return value.lower()
    raise _invalid(field, _("Expected a student's pseudonymous id (a UUID)."))


def _id(value, field: str) -> int:
    # `type(...) is int`: JSON true and false are ints to Python, and no employer's id.
    if type(value) is int and 0 < value <= MAX_ID:
        return value
    # JSON Schema counts 3.0 as an integer, and some JSON writers send ids so. Only below
    # 2**53, where every whole number is exact: 9007199254740993.0 parses as 2**53, and
    # must not become some other employer's id.
    if type(value) is float and value.is_integer() and 0 < value < MAX_EXACT_FLOAT:
        return int(value)
    raise _invalid(field, _("Expected an employer id (a positive integer)."))


def _code(value, field: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise _invalid(field, _("Expected a purpose code (a non-empty string)."))


def _object(value, field: str) -> dict:
    if isinstance(value, dict):
        return value
    raise _invalid(field, _("Expected a JSON object."))


def loads_check_body(body: bytes):
    """A check's body as json.loads reads it, in half the time: orjson, and json.loads
    wherever orjson refuses (a lone surrogate escape, NaN, a byte-order mark, 1e400, deep
    nesting), so that every error and every echoed value stays as it was. One difference
    is left, harmless here only: orjson reads a whole number beyond 64 bits as a float,
    and check_triples refuses both the same way (no employer's id is that large)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


_CHECK_FIELDS = itemgetter("student", "employer", "purpose")


def _check_triples_at_once(checks: list) -> list[tuple[str, int, str]] | None:
    """The triples when every check is right, checked column by column; None when one is
    not, for the loop below to name it."""
    try:
        students, employers, purposes = zip(*map(_CHECK_FIELDS, checks), strict=True)
    except (KeyError, TypeError):  # a check that is not an object, or lacks a field
        return None
    if not (
        all(type(employer) is int for employer in employers)
        and all(type(purpose) is str for purpose in purposes)
        and 0 < min(employers)
        and max(employers) <= MAX_ID
        and "" not in purposes
    ):
        return None
    public_ids = canonical_uuids(students)
    if public_ids is None:
        return None
    return list(zip(public_ids, employers, purposes, strict=True))


def check_triples(body) -> list[tuple[str, int, str]]:
    """`{"checks": [{"student", "employer", "purpose"}, ...]}` → (public id, employer, code)."""
    checks = batch_items(
        body,
        "checks",
        _("Expected 'checks': a list of up to 1,000 checks."),
        _("At most %(max)d checks per request; this one has %(count)d."),
    )
    if not checks:
        return []
    triples = _check_triples_at_once(checks)
    if triples is not None:
        return triples
    triples = []
    for index, item in enumerate(checks):
        where = f"checks[{index}]"
        item = _object(item, where)
        triples.append(
            (
                _uuid(item.get("student"), f"{where}.student"),
                _id(item.get("employer"), f"{where}.employer"),
                _code(item.get("purpose"), f"{where}.purpose"),
            )
        )
    return triples


@dataclass(frozen=True)
class ProvisionPayload:
    student: str
    employer: int
    purpose: str
    data_items: str
    provided_at: datetime | None
    first_provided_at: datetime | None
    reference: str


def _aware_datetime(value, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.utcoffset() is not None:
            return parsed
        if parsed is not None:
            # A time without an offset is ambiguous between the pipeline's clock and ours;
            # guessing wrong would move a provision across a withdrawal.
            raise _invalid(
                field, _("Give the time with its UTC offset, e.g. 2026-04-01T10:00:00+09:00.")
            )
    raise _invalid(field, _("Expected an ISO 8601 date and time with a UTC offset."))


def _storable(text: str) -> bool:
    """Whether the database can keep this text: PostgreSQL refuses NUL in text, and UTF-8
    cannot encode a lone surrogate (JSON's "\ud800"). Either was a 500 before."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(field: str) -> ApiError:
    return _invalid(field, _("The text holds a NUL character or an unpaired surrogate."))


def provision_payload(body) -> ProvisionPayload:
    body = _object(body, "")
    data_items = body.get("data_items")
    if not isinstance(data_items, str) or not data_items.strip():
        raise _invalid("data_items", _("Say which data items were provided."))
    if len(data_items) > MAX_DATA_ITEMS:
        raise _invalid("data_items", _("At most %(max)d characters.") % {"max": MAX_DATA_ITEMS})
    if not _storable(data_items):
        raise _unstorable("data_items")
    reference = body.get("reference") or ""
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE:
        raise _invalid(
            "reference",
            _("Expected a string of at most %(max)d characters.") % {"max": MAX_REFERENCE},
        )
    if not _storable(reference):
        raise _unstorable("reference")
    return ProvisionPayload(
        student=_uuid(body.get("student"), "student"),
        employer=_id(body.get("employer"), "employer"),
        purpose=_code(body.get("purpose"), "purpose"),
        data_items=data_items.strip(),
        provided_at=_aware_datetime(body.get("provided_at"), "provided_at"),
        first_provided_at=_aware_datetime(body.get("first_provided_at"), "first_provided_at"),
        reference=reference,
    )


def _query_int(request, name: str, default: int, *, low: int, high: int, code: str) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    # An empty value (`?since=`) is refused like any other non-number: the document types
    # both parameters as integers, and a client that sent one meant something by it.
    # Digits only (int() would also take " 7", "+7" and "7_000"), and few enough of them.
    if len(raw) <= 19 and raw.isascii() and raw.isdecimal() and low <= int(raw) <= high:
        return int(raw)
    raise ApiError(
        400,
        code,
        _("'%(name)s' must be a whole number from %(low)d to %(high)d.")
        % {"name": name, "low": low, "high": high},
        field=name,
    )


CHANGES_PARAMETERS = frozenset({"since", "limit"})


def changes_query(request) -> tuple[int, int]:
    """`?since=<cursor>&limit=<n>` → (cursor, limit)."""
    # A misspelt cursor (`?cursor=`, `?since_id=`) would otherwise be ignored and the feed
    # served from the start, over and over: refuse what the document does not list.
    unknown = sorted(set(request.GET) - CHANGES_PARAMETERS)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            _("Unknown query parameter '%(name)s'; this endpoint takes since and limit.")
            % {"name": unknown[0]},
            field=unknown[0],
        )
    since = _query_int(request, "since", 0, low=0, high=MAX_ID, code="bad_cursor")
    limit = _query_int(
        request, "limit", DEFAULT_CHANGES_LIMIT, low=1, high=MAX_CHANGES_LIMIT, code="bad_limit"
    )
    return since, limit


@dataclass(frozen=True)
class ActivityPayload:
    id: str
    student: str
    employer: int | None
    kind: str
    detail: str
    occurred_at: datetime


# No control characters (the document says the same with a pattern).
RECORD_ID = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_RECORD_ID}}}")


def _record_id(value, field: str) -> str:
    if isinstance(value, str) and RECORD_ID.fullmatch(value) and _storable(value):
        return value
    raise _invalid(
        field,
        _("Expected your record id: 1 to %(max)d characters, none of them a control character.")
        % {"max": MAX_RECORD_ID},
    )


def activity_records(body) -> list[ActivityPayload]:
    """`{"records": [{"id", "student", "employer"?, "kind", "detail"?, "occurred_at"}, ...]}`.

    A record of the wrong shape fails the whole request (422 naming it), as in
    check_triples: that is the sender's bug, not a fact about a student. What only the
    database can say (unknown student, a deletion request) is answered per record."""
    records = batch_items(
        body,
        "records",
        _("Expected 'records': a list of up to 1,000 records."),
        _("At most %(max)d records per request; this one has %(count)d."),
    )
    parsed = []
    for index, item in enumerate(records):
        where = f"records[{index}]"
        item = _object(item, where)
        record_id = _record_id(item.get("id"), f"{where}.id")
        student = _uuid(item.get("student"), f"{where}.student")
        employer = item.get("employer")
        employer = None if employer is None else _id(employer, f"{where}.employer")
        kind = item.get("kind")
        if kind not in ACTIVITY_KINDS:
            raise _invalid(
                f"{where}.kind",
                _("Expected one of: %(kinds)s.") % {"kinds": ", ".join(ACTIVITY_KINDS)},
            )
        detail = item.get("detail")
        detail = "" if detail is None else detail
        if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
            raise _invalid(
                f"{where}.detail",
                _("Expected a string of at most %(max)d characters.") % {"max": MAX_DETAIL},
            )
        if not _storable(detail):
            raise _unstorable(f"{where}.detail")
        occurred_at = _aware_datetime(item.get("occurred_at"), f"{where}.occurred_at")
        if occurred_at is None:
            raise _invalid(f"{where}.occurred_at", _("Say when it happened."))
        parsed.append(ActivityPayload(record_id, student, employer, kind, detail, occurred_at))
    return parsed


@dataclass(frozen=True)
class InferencePayload:
    id: str
    student: str
    model: str
    model_version: str
    employer: int
    output: str | float
    made_at: datetime
    input_from: datetime
    input_to: datetime
    handed_over_at: datetime | None


# A model's code (a slug) and version label, as inferences/models.py allows them: anything
# else names no model, and is refused with the batch before reaching the database.
MODEL_CODE = re.compile(r"[-a-zA-Z0-9_]{1,60}")
MODEL_VERSION = re.compile(r"[-A-Za-z0-9_.]{1,40}")
MAX_OUTPUT_LABEL = 100


def _output(value, field: str) -> str | float:
    """A label (a string) or a number (JSON's, finite; true and false are neither)."""
    if isinstance(value, str):
        if 0 < len(value) <= MAX_OUTPUT_LABEL and RECORD_ID.fullmatch(value) and _storable(value):
            return value
    elif type(value) in (int, float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise _invalid(
        field,
        _("Expected the result: a label of at most %(max)d characters, or a finite number.")
        % {"max": MAX_OUTPUT_LABEL},
    )


def _matching(value, pattern: re.Pattern, field: str, message: str) -> str:
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    raise _invalid(field, message)


def _storable_datetime(value, field: str, *, required: bool = True) -> datetime | None:
    """An aware time that UTC can hold: 0001-01-01T00:00+09:00 is before year 1 in UTC, and
    the database would fail on it."""
    parsed = _aware_datetime(value, field)
    if parsed is None and not required:
        return None
    try:
        if parsed is not None:
            return parsed.astimezone(UTC)
    except OverflowError:
        pass
    raise _invalid(field, _("Expected an ISO 8601 date and time with a UTC offset."))


def inference_items(body) -> list[InferencePayload]:
    """`{"inferences": [{"id", "student", "model", "model_version", "employer", "output",
    "made_at", "input_from", "input_to", "handed_over_at"?}, ...]}`.

    As in activity_records, an item of the wrong shape fails the whole request (422 naming
    it), and so do times out of order (the input window ends at or before the result was
    made; a result is handed over at or after it was made). What only the database can say
    (no grant, an objection, a request) is answered per item."""
    items = batch_items(
        body,
        "inferences",
        _("Expected 'inferences': a list of up to 1,000 results."),
        _("At most %(max)d inferences per request; this one has %(count)d."),
    )
    parsed = []
    for index, item in enumerate(items):
        where = f"inferences[{index}]"
        item = _object(item, where)
        payload = InferencePayload(
            id=_record_id(item.get("id"), f"{where}.id"),
            student=_uuid(item.get("student"), f"{where}.student"),
            model=_matching(
                item.get("model"),
                MODEL_CODE,
                f"{where}.model",
                _("Expected a model's code (letters, digits, - and _)."),
            ),
            model_version=_matching(
                item.get("model_version"),
                MODEL_VERSION,
                f"{where}.model_version",
                _("Expected a model's version (letters, digits, ., - and _)."),
            ),
            employer=_id(item.get("employer"), f"{where}.employer"),
            output=_output(item.get("output"), f"{where}.output"),
            made_at=_storable_datetime(item.get("made_at"), f"{where}.made_at"),
            input_from=_storable_datetime(item.get("input_from"), f"{where}.input_from"),
            input_to=_storable_datetime(item.get("input_to"), f"{where}.input_to"),
            handed_over_at=_storable_datetime(
                item.get("handed_over_at"), f"{where}.handed_over_at", required=False
            ),
        )
        if payload.input_from > payload.input_to:
            raise _invalid(f"{where}.input_from", _("The input window starts after it ends."))
        if payload.input_to > payload.made_at:
            raise _invalid(
                f"{where}.input_to", _("The input window ends after the result was made.")
            )
        if payload.handed_over_at is not None and payload.handed_over_at < payload.made_at:
            raise _invalid(
                f"{where}.handed_over_at", _("A result is handed over after it is made.")
            )
        parsed.append(payload)
    return parsed


def idempotency_key(request) -> str | None:
    """The `Idempotency-Key` header (IETF draft "The Idempotency-Key HTTP Header Field"):
    absent, or 1 to 255 visible ASCII characters."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    # Taken as sent, quotes and all (the draft's sf-string form is quoted): a retry sends the
    # same header, and the document's pattern says exactly what is accepted.
    if 0 < len(key) <= MAX_IDEMPOTENCY_KEY and all("!" <= c <= "~" for c in key):
        return key
    raise ApiError(
        400,
        "bad_idempotency_key",
        _("The Idempotency-Key header must be 1 to %(max)d visible ASCII characters.")
        % {"max": MAX_IDEMPOTENCY_KEY},
        field="Idempotency-Key",
    )


# GET /requests and POST /requests/{reference}/answer (disclosure/api.py).
REQUEST_STATUSES = ("open", "answered", "all")
DEFAULT_REQUESTS_LIMIT = 100
MAX_REQUESTS_LIMIT = 500
REQUESTS_PARAMETERS = frozenset({"status", "changed_since", "cursor", "limit"})
MAX_CURSOR = 200
MAX_ANSWERED_BY = 200
MAX_STATEMENT = 20000


@dataclass(frozen=True)
class RequestsQuery:
    status: str
    changed_since: datetime | None
    cursor: str | None
    limit: int


def requests_query(request) -> RequestsQuery:
    """`?status=open|answered|all&changed_since=<RFC 3339>&cursor=<next>&limit=<n>`."""
    unknown = sorted(set(request.GET) - REQUESTS_PARAMETERS)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            _(
                "Unknown query parameter '%(name)s'; this endpoint takes status, "
                "changed_since, cursor and limit."
            )
            % {"name": unknown[0]},
            field=unknown[0],
        )
    status = request.GET.get("status", "open")
    if status not in REQUEST_STATUSES:
        raise ApiError(
            400,
            "bad_status",
            _("'status' must be one of: %(statuses)s.") % {"statuses": ", ".join(REQUEST_STATUSES)},
            field="status",
        )
    changed_since = None
    raw = request.GET.get("changed_since")
    if raw is not None:
        try:
            changed_since = datetime.fromisoformat(raw) if raw.isascii() else None
        except ValueError:
            changed_since = None
        try:
            # In UTC here: year 9999 at -05:00 is past what a datetime holds in UTC.
            changed_since = (
                changed_since.astimezone(UTC)
                if changed_since is not None and changed_since.utcoffset() is not None
                else None
            )
        except OverflowError:
            changed_since = None
        if changed_since is None:
            raise ApiError(
                400,
                "bad_changed_since",
                _("'changed_since' must be a date and time with its UTC offset (RFC 3339).")
                + " "
                + _("For example 2026-04-01T10:00:00+09:00."),
                field="changed_since",
            )
    cursor = request.GET.get("cursor")
    if cursor is not None and not (0 < len(cursor) <= MAX_CURSOR and cursor.isascii()):
        raise ApiError(400, "bad_cursor", _("This cursor is not one we gave."), field="cursor")
    limit = _query_int(
        request,
        "limit",
        DEFAULT_REQUESTS_LIMIT,
        low=1,
        high=MAX_REQUESTS_LIMIT,
        code="bad_limit",
    )
    return RequestsQuery(status, changed_since, cursor, limit)


@dataclass(frozen=True)
class AnswerPayload:
    answer: str
    answered_by: str
    statement: str
    attestation: bool


def _text(body: dict, name: str, *, limit: int) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(name, _("Expected a string of at most %(max)d characters.") % {"max": limit})
    if not _storable(value):
        raise _unstorable(name)
    return value.strip()


def answer_payload(body, *, answers: tuple[str, ...]) -> AnswerPayload:
    """`{"answer", "answered_by", "statement"?, "attestation"?}`, as the answer page takes
    them: `answers` are those that fit the request's kind."""
    body = _object(body, "")
    answer = body.get("answer")
    if answer not in answers:
        raise _invalid(
            "answer",
            _("Expected one of: %(answers)s.") % {"answers": ", ".join(answers)},
        )
    answered_by = _text(body, "answered_by", limit=MAX_ANSWERED_BY)
    if not answered_by:
        raise _invalid("answered_by", _("Give the name of the person responsible."))
    statement = _text(body, "statement", limit=MAX_STATEMENT)
    attestation = body.get("attestation", False)
    if not isinstance(attestation, bool):
        raise _invalid("attestation", _("Expected true or false."))
    return AnswerPayload(answer, answered_by, statement, attestation)
