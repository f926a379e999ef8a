"""Disclosure reports (PDF and JSON) and completion certificates.

`disclosure_report_data(student)` gathers everything the portal holds about a student in a
fixed number of queries (eleven, whatever the length of the student's history), as plain
values rather than model instances, so a student with thousands of activity records costs
one query and one list of tuples for them. The JSON file is that dictionary; the PDF renders
the same rows, so the two can never disagree. Times in the JSON are ISO 8601 with their
offset (Asia/Tokyo); the PDF shows them in the student's language, in Japan time.
"""

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit.models import StaffRead
from audit.reads import staff_role_label
from consent.models import (
    EMPLOYER_PLACEHOLDERS,
    Consent,
    ConsentEvent,
    ConsentScreen,
    PolicyAcceptance,
    Provision,
    Screen,
)
from disclosure.models import (
    DataRequest,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
    reader_statement,
)
from portal.models import ActivityRecord, Language, User
from portal.pdf import pdf_html, pdf_render

# Bumped when a key is renamed or removed; adding keys keeps the version.
REPORT_FORMAT = "student-data-portal/disclosure-report/1.0"
REPORT_TEMPLATE = "disclosure/report_pdf.html"
CERTIFICATE_TEMPLATE = "disclosure/certificate_pdf.html"

Kind = RequestFile.Kind


# --- Gathering --------------------------------------------------------------------------


class _Employers:
    """The companies named anywhere in the report, collected from the rows' joins (no query
    of its own), listed once at the end of the JSON with both names."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict] = {}

    def add(self, employer_id: int | None, name: str | None, name_en: str | None) -> None:
        if employer_id is not None and employer_id not in self.by_id:
            self.by_id[employer_id] = {"id": employer_id, "name": name, "name_en": name_en or ""}

    def listed(self) -> list[dict]:
        return sorted(self.by_id.values(), key=lambda e: (e["name"], e["id"]))


class _Purposes:
    def __init__(self) -> None:
        self.by_code: dict[str, dict] = {}

    def add(self, row: dict, prefix: str = "purpose__") -> str:
        code = row[f"{prefix}code"]
        if code not in self.by_code:
            self.by_code[code] = {
                "code": code,
                "title_ja": row[f"{prefix}title_ja"],
                "title_en": row[f"{prefix}title_en"],
                "data_items_ja": row[f"{prefix}data_items_ja"],
                "data_items_en": row[f"{prefix}data_items_en"],
            }
        return code

    def listed(self) -> list[dict]:
        return sorted(self.by_code.values(), key=lambda p: p["code"])


_PURPOSE_FIELDS = (
    "purpose__code",
    "purpose__title_ja",
    "purpose__title_en",
    "purpose__data_items_ja",
    "purpose__data_items_en",
)


def _profile(student: User) -> dict:
    return {
        "public_id": str(student.public_id),
        "email": student.email,
        "display_name": student.display_name,
        "language": student.language,
        "date_joined": student.date_joined,
        "last_login": student.last_login,
        "is_active": student.is_active,
    }


def _acceptances(student: User) -> list[dict]:
    rows = (
        PolicyAcceptance.objects.filter(student=student)
        .order_by("accepted_at", "id")
        .values(
            "receipt_id",
            "version__label",
            "version__title_ja",
            "version__title_en",
            "version__effective_at",
            "accepted_at",
            "screen",
            "language",
            "text_sha256",
            "collection_method",
            "ip_address",
            "user_agent",
        )
    )
    return [
        {
            "receipt_id": str(r["receipt_id"]),
            "version": r["version__label"],
            "version_title": r["version__title_en"]
            if r["language"] == Language.EN
            else r["version__title_ja"],
            "version_effective_at": r["version__effective_at"],
            "accepted_at": r["accepted_at"],
            "screen": r["screen"],
            "language": r["language"],
            "text_sha256": r["text_sha256"],
            "collection_method": r["collection_method"],
            "ip_address": r["ip_address"],
            "user_agent": r["user_agent"],
        }
        for r in rows
    ]


def _consent_events(student: User, employers: _Employers, purposes: _Purposes) -> list[dict]:
    rows = (
        ConsentEvent.objects.filter(student=student)
        .order_by("occurred_at", "id")
        .values(
            "receipt_id",
            "employer_id",
            "employer__name",
            "employer__name_en",
            *_PURPOSE_FIELDS,
            "action",
            "occurred_at",
            "screen",
            "policy_version__label",
            "language",
            "actor",
            "reason",
            "collection_method",
            "ip_address",
            "user_agent",
        )
    )
    events = []
    for r in rows:
        employers.add(r["employer_id"], r["employer__name"], r["employer__name_en"])
        events.append(
            {
                "receipt_id": str(r["receipt_id"]),
                "employer_id": r["employer_id"],
                "employer": r["employer__name"],
                "purpose": purposes.add(r),
                "action": r["action"],
                "occurred_at": r["occurred_at"],
                "screen": r["screen"],
                "policy_version": r["policy_version__label"],
                "language": r["language"],
                "actor": r["actor"],
                "reason": r["reason"],
                "collection_method": r["collection_method"],
                "ip_address": r["ip_address"],
                "user_agent": r["user_agent"],
            }
        )
    return events


def _consents(student: User, employers: _Employers, purposes: _Purposes) -> list[dict]:
    rows = (
        Consent.objects.filter(student=student)
        .order_by("employer__name", "employer_id", "purpose__code")
        .values(
            "employer_id",
            "employer__name",
            "employer__name_en",
            *_PURPOSE_FIELDS,
            "granted",
            "updated_at",
            "event__receipt_id",
            "event__action",
        )
    )
    consents = []
    for r in rows:
        employers.add(r["employer_id"], r["employer__name"], r["employer__name_en"])
        consents.append(
            {
                "employer_id": r["employer_id"],
                "employer": r["employer__name"],
                "purpose": purposes.add(r),
                "granted": r["granted"],
                "since": r["updated_at"],
                "latest_event": str(r["event__receipt_id"]),
                "latest_action": r["event__action"],
            }
        )
    return consents


def _provisions(student: User, employers: _Employers, purposes: _Purposes) -> list[dict]:
    rows = (
        Provision.objects.filter(student=student)
        .order_by("provided_at", "id")
        .values(
            "id",
            "employer_id",
            "employer__name",
            "employer__name_en",
            *_PURPOSE_FIELDS,
            "data_items",
            "first_provided_at",
            "provided_at",
            "recorded_at",
            "consent_event__receipt_id",
            "recorded_by__name",
        )
    )
    provisions = []
    for r in rows:
        employers.add(r["employer_id"], r["employer__name"], r["employer__name_en"])
        provisions.append(
            {
                "id": r["id"],
                "employer_id": r["employer_id"],
                "employer": r["employer__name"],
                "purpose": purposes.add(r),
                "data_items": r["data_items"],
                "first_provided_at": r["first_provided_at"] or r["provided_at"],
                "last_provided_at": r["provided_at"],
                "bulk": r["first_provided_at"] is not None,
                "recorded_at": r["recorded_at"],
                "consent_receipt_id": str(r["consent_event__receipt_id"]),
                "recorded_by": r["recorded_by__name"],
            }
        )
    return provisions


def _recipients(provisions: list[dict]) -> list[dict]:
    """One line per company that received data: what, first and last time, how often."""
    by_employer: dict[int, dict] = {}
    for p in provisions:
        entry = by_employer.setdefault(
            p["employer_id"],
            {
                "employer_id": p["employer_id"],
                "employer": p["employer"],
                "provisions": 0,
                "purposes": [],
                "data_items": [],
                "first_provided_at": p["first_provided_at"],
                "last_provided_at": p["last_provided_at"],
            },
        )
        entry["provisions"] += 1
        if p["purpose"] not in entry["purposes"]:
            entry["purposes"].append(p["purpose"])
        if p["data_items"] not in entry["data_items"]:
            entry["data_items"].append(p["data_items"])
        entry["first_provided_at"] = min(entry["first_provided_at"], p["first_provided_at"])
        entry["last_provided_at"] = max(entry["last_provided_at"], p["last_provided_at"])
    return sorted(by_employer.values(), key=lambda e: (e["employer"], e["employer_id"]))


def _activity(student: User, employers: _Employers) -> list[dict]:
    rows = (
        ActivityRecord.objects.filter(student=student)
        .order_by("occurred_at", "id")
        .values_list(
            "id",
            "occurred_at",
            "kind",
            "employer_id",
            "employer__name",
            "employer__name_en",
            "detail",
        )
    )
    records = []
    for pk, occurred_at, kind, employer_id, name, name_en, detail in rows:
        employers.add(employer_id, name, name_en)
        records.append(
            {
                "id": pk,
                "occurred_at": occurred_at,
                "kind": kind,
                "employer_id": employer_id,
                "employer": name,
                "detail": detail,
            }
        )
    return records


def _times_in(stored: dict) -> dict:
    """A stored JSON dict's "…_at" ISO strings as datetimes, so they are written in Japan
    time like every other time of the report (the services store them in UTC)."""
    converted = {}
    for key, value in (stored or {}).items():
        if key.endswith("_at") and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                pass
        converted[key] = value
    return converted


def _requests(student: User, employers: _Employers) -> list[dict]:
    """The student's requests, each with every company's task and answer, the files (by name
    and SHA-256, never their content) and the timeline: five queries in all."""
    requests = list(
        DataRequest.objects.filter(student=student)
        .order_by("submitted_at", "id")
        .values(
            "id",
            "reference",
            "kind",
            "status",
            "all_recipients",
            "delivery_format",
            "message",
            "language",
            "submitted_at",
            "due_at",
            "extension_reason",
            "portal_done_at",
            "portal_summary",
            "completed_at",
            "cancel_reason",
        )
    )
    chosen: dict[int, list] = defaultdict(list)
    for request_id, employer_id, name, name_en in (
        DataRequest.employers.through.objects.filter(datarequest__student=student)
        .order_by("employer__name", "employer_id")
        .values_list("datarequest_id", "employer_id", "employer__name", "employer__name_en")
    ):
        employers.add(employer_id, name, name_en)
        chosen[request_id].append({"employer_id": employer_id, "employer": name})
    files: dict[tuple[int, int | None], list] = defaultdict(list)
    for f in (
        RequestFile.objects.filter(request__student=student)
        .order_by("created_at", "id")
        .values("request_id", "task_id", "kind", "name", "content_type", "size", "sha256")
    ):
        files[(f["request_id"], f["task_id"])].append(
            {
                "kind": f["kind"],
                "name": f["name"],
                "content_type": f["content_type"],
                "size": f["size"],
                "sha256": f["sha256"],
            }
        )
    tasks: dict[int, list] = defaultdict(list)
    for t in (
        RecipientTask.objects.filter(request__student=student)
        .order_by("employer__name", "employer_id")
        .values(
            "id",
            "request_id",
            "employer_id",
            "employer__name",
            "employer__name_en",
            "reasons",
            "status",
            "sent_at",
            "reminders_sent",
            "overdue",
            "answer",
            "answered_at",
            "answered_by",
            "statement",
            "answered_via",
            "evidence",
        )
    ):
        employers.add(t["employer_id"], t["employer__name"], t["employer__name_en"])
        tasks[t["request_id"]].append(
            {
                "employer_id": t["employer_id"],
                "employer": t["employer__name"],
                "why": _times_in(t["reasons"]),
                "status": t["status"],
                "sent_at": t["sent_at"],
                "reminders_sent": t["reminders_sent"],
                "overdue": t["overdue"],
                "answer": t["answer"] or None,
                "answered_at": t["answered_at"],
                "answered_by": t["answered_by"],
                "statement": t["statement"],
                "answered_via": t["answered_via"] or None,
                "evidence": t["evidence"],
                "files": files.get((t["request_id"], t["id"]), []),
            }
        )
    events: dict[int, list] = defaultdict(list)
    for e in (
        RequestEvent.objects.filter(request__student=student)
        .order_by("at", "id")
        .values("request_id", "kind", "at", "actor", "detail", "task__employer__name")
    ):
        events[e["request_id"]].append(
            {
                "at": e["at"],
                "kind": e["kind"],
                "actor": e["actor"],
                "employer": e["task__employer__name"],
                "detail": e["detail"],
            }
        )
    return [
        {
            "reference": r["reference"],
            "kind": r["kind"],
            "status": r["status"],
            "scope": "all_recipients" if r["all_recipients"] else "chosen",
            "chosen_companies": chosen.get(r["id"], []),
            "delivery_format": r["delivery_format"],
            "message": r["message"],
            "language": r["language"],
            "submitted_at": r["submitted_at"],
            "due_at": r["due_at"],
            "extension_reason": r["extension_reason"],
            "portal_done_at": r["portal_done_at"],
            "portal_summary": r["portal_summary"],
            "completed_at": r["completed_at"],
            "cancel_reason": r["cancel_reason"],
            "files": files.get((r["id"], None), []),
            "companies": tasks.get(r["id"], []),
            "timeline": events.get(r["id"], []),
        }
        for r in requests
    ]


def _staff_looks(student: User) -> list[dict]:
    """Each staff look at the student's data (audit.StaffRead): role, when, what, why."""
    return [
        {
            "at": look.at,
            "role": look.role,
            "what": look.what,
            "record_type": look.record_type,
            "request": look.label if look.what == StaffRead.What.REQUEST else "",
            "reason": look.reason,
        }
        for look in StaffRead.objects.filter(student=student).order_by("at", "pk")
    ]


def _gather(student: User, *, request: DataRequest | None = None) -> dict:
    """The report with datetime values (the PDF formats them; the JSON writes them ISO)."""
    employers, purposes = _Employers(), _Purposes()
    addresses = list(
        EmailAddress.objects.filter(user=student)
        .order_by("-primary", "email")
        .values("email", "verified", "primary")
    )
    consent_events = _consent_events(student, employers, purposes)
    provisions = _provisions(student, employers, purposes)
    activity = _activity(student, employers)
    data = {
        "format": REPORT_FORMAT,
        "generated_at": timezone.localtime(),
        "controller": dict(settings.PORTAL_OPERATOR),
        "request": None
        if request is None
        else {
            "reference": request.reference,
            "kind": request.kind,
            "submitted_at": request.submitted_at,
            "language": request.language,
        },
        "profile": {**_profile(student), "email_addresses": addresses},
        "policy_acceptances": _acceptances(student),
        "consent_events": consent_events,
        "consents": _consents(student, employers, purposes),
        "provisions": provisions,
        "recipients": _recipients(provisions),
        "activity_records": activity,
        "requests": _requests(student, employers),
        "sources": [] if request is None else _sources(request),
        "staff_looks": _staff_looks(student),
    }
    data["counts"] = {
        key: len(data[key])
        for key in (
            "policy_acceptances",
            "consent_events",
            "consents",
            "provisions",
            "activity_records",
            "requests",
            "staff_looks",
        )
    }
    data["employers"] = employers.listed()
    data["purposes"] = purposes.listed()
    return data


def _sources(request: DataRequest) -> list[dict]:
    """What each of the site's own systems answered to this request, with what it disclosed."""
    return [
        {
            "name": t.source.name,
            "holds": t.source.holds,
            "status": t.status,
            "answer": t.answer,
            "answered_at": t.answered_at,
            "data": t.data,
        }
        for t in SourceTask.objects.filter(request=request)
        .select_related("source")
        .order_by("source__name", "source_id")
    ]


# The PDF shows at most this many lines of what one source disclosed (the JSON has it all).
SOURCE_PDF_LINES = 200


def source_data_lines(data: Any) -> list[str]:
    """A source's data as lines for the PDF: one per row ("key: value · ..."), else per key."""
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        items = data["rows"]
    elif isinstance(data, dict):
        items = [{key: value} for key, value in data.items()]
    else:
        items = [data]
    lines = []
    for item in items[:SOURCE_PDF_LINES]:
        if isinstance(item, dict):
            lines.append(" · ".join(f"{k}: {_short(v)}" for k, v in item.items()))
        else:
            lines.append(_short(item))
    if len(items) > SOURCE_PDF_LINES:
        lines.append(f"… (+{len(items) - SOURCE_PDF_LINES})")
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def disclosure_report_data(student: User, *, request: DataRequest | None = None) -> dict:
    """Everything the portal holds about `student`, JSON-serialisable, in a fixed number of
    queries. With `request`, the report says which request it answers."""
    return _jsonable(_gather(student, request=request))


def _report_json(data: dict) -> bytes:
    return json.dumps(_jsonable(data), ensure_ascii=False, indent=2).encode("utf-8")


# --- The PDF report ---------------------------------------------------------------------


def _label(choices) -> dict:
    return {value: str(label) for value, label in choices}


def _report_context(data: dict, language: str) -> dict:
    """What the template shows: the report's rows with labels in `language` (call inside
    translation.override). Company and purpose names in the language where there is one."""
    names = {
        e["id"]: (e["name_en"] if language == Language.EN and e["name_en"] else e["name"])
        for e in data["employers"]
    }
    titles = {
        p["code"]: (p["title_en"] if language == Language.EN and p["title_en"] else p["title_ja"])
        for p in data["purposes"]
    }

    def purpose(code: str, company_name: str) -> str:
        # "Giving the result to <employer>": the company's name in place of the placeholder.
        title = titles.get(code, code)
        for placeholder in EMPLOYER_PLACEHOLDERS:
            title = title.replace(placeholder, company_name)
        return title

    screens = _label(Screen.choices)
    looks_what = _label(StaffRead.What.choices)
    consent_screens = _label(ConsentScreen.choices)
    actions = _label(ConsentEvent.Action.choices)
    actors = _label(ConsentEvent.Actor.choices)
    languages = _label(Language.choices)
    activity_kinds = _label(ActivityRecord.Kind.choices)
    request_kinds = _label(DataRequest.Kind.choices)
    request_statuses = _label(DataRequest.Status.choices)
    formats = _label(DataRequest.Format.choices)
    source_statuses = _label(SourceTask.Status.choices)
    source_answers = _label(SourceTask.Answer.choices)
    task_statuses = _label(RecipientTask.Status.choices)
    answers = _label(RecipientTask.Answer.choices)
    vias = _label(RecipientTask.Via.choices)
    event_kinds = _label(RequestEvent.Kind.choices)
    event_actors = _label(RequestEvent.Actor.choices)

    def company(row: dict) -> str:
        return names.get(row.get("employer_id"), row.get("employer") or "")

    consents_by_company: dict[int, dict] = {}
    for c in data["consents"]:
        entry = consents_by_company.setdefault(
            c["employer_id"], {"company": company(c), "rows": []}
        )
        entry["rows"].append({**c, "purpose_title": purpose(c["purpose"], company(c))})
    return {
        "data": data,
        "profile": {
            **data["profile"],
            "language_label": languages.get(data["profile"]["language"], ""),
        },
        "acceptances": [
            {
                **a,
                "screen_label": screens.get(a["screen"], a["screen"]),
                "language_label": languages.get(a["language"], a["language"]),
            }
            for a in data["policy_acceptances"]
        ],
        "consents_by_company": sorted(consents_by_company.values(), key=lambda e: e["company"]),
        "consent_events": [
            {
                **e,
                "company": company(e),
                "purpose_title": purpose(e["purpose"], company(e)),
                "action_label": actions.get(e["action"], e["action"]),
                "screen_label": consent_screens.get(e["screen"], e["screen"]),
                "actor_label": actors.get(e["actor"], e["actor"]),
            }
            for e in data["consent_events"]
        ],
        "recipients": [
            {
                **r,
                "company": company(r),
                "purpose_titles": [purpose(p, company(r)) for p in r["purposes"]],
            }
            for r in data["recipients"]
        ],
        "provisions": [
            {**p, "company": company(p), "purpose_title": purpose(p["purpose"], company(p))}
            for p in data["provisions"]
        ],
        "activity": [
            (
                a["occurred_at"],
                activity_kinds.get(a["kind"], a["kind"]),
                names.get(a["employer_id"], "") if a["employer_id"] else "",
                a["detail"],
            )
            for a in data["activity_records"]
        ],
        "staff_looks": [
            {
                **look,
                "role_label": staff_role_label(look["role"]),
                "what_label": looks_what.get(look["what"], look["what"]),
            }
            for look in data["staff_looks"]
        ],
        "sources": [
            {
                **src,
                "status_label": source_statuses.get(src["status"], src["status"]),
                "answer_label": source_answers.get(src["answer"], "") if src["answer"] else "",
                "lines": source_data_lines(src["data"]) if src["data"] else [],
            }
            for src in data.get("sources", [])
        ],
        "requests": [
            {
                **r,
                "kind_label": request_kinds.get(r["kind"], r["kind"]),
                "status_label": request_statuses.get(r["status"], r["status"]),
                "format_label": formats.get(r["delivery_format"], r["delivery_format"]),
                "companies": [
                    {
                        **t,
                        "company": company(t),
                        "status_label": task_statuses.get(t["status"], t["status"]),
                        "answer_label": answers.get(t["answer"], "") if t["answer"] else "",
                        "via_label": vias.get(t["answered_via"], "") if t["answered_via"] else "",
                        # An attestation in the reader's words; "statement" keeps the exact
                        # words the company confirmed (also in the JSON).
                        "reader_statement": reader_statement(
                            answer=t["answer"] or "", statement=t["statement"]
                        ),
                    }
                    for t in r["companies"]
                ],
                "timeline": [
                    {
                        **e,
                        "kind_label": event_kinds.get(e["kind"], e["kind"]),
                        "actor_label": event_actors.get(e["actor"], e["actor"]),
                    }
                    for e in r["timeline"]
                ],
            }
            for r in data["requests"]
        ],
    }


def _report_pdf(data: dict, *, request: DataRequest) -> bytes:
    language = request.language
    with translation.override(language):
        context = _report_context(data, language)
    return pdf_render(
        template=REPORT_TEMPLATE, context={**context, "request": request}, language=language
    )


def disclosure_report_html(*, request_id: int) -> str:
    """The report's HTML as `pdf_render` gives it to WeasyPrint (for the benchmark's yardstick)."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    data = _gather(request.student, request=request)
    with translation.override(request.language):
        context = _report_context(data, request.language)
    return pdf_html(
        template=REPORT_TEMPLATE, context={**context, "request": request}, language=request.language
    )


def disclosure_report_files(*, request_id: int) -> list[tuple[str, str, str, bytes]]:
    """[(RequestFile.Kind, file name, content type, bytes)] in the request's delivery format:
    `<reference>-report.pdf` and/or `<reference>-report.json`, from one gathering."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    data = _gather(request.student, request=request)
    fmt = request.delivery_format
    files = []
    if fmt in (DataRequest.Format.PDF_JSON, DataRequest.Format.PDF):
        files.append(
            (
                Kind.REPORT_PDF,
                f"{request.reference}-report.pdf",
                "application/pdf",
                _report_pdf(data, request=request),
            )
        )
    if fmt in (DataRequest.Format.PDF_JSON, DataRequest.Format.JSON):
        files.append(
            (
                Kind.REPORT_JSON,
                f"{request.reference}-report.json",
                "application/json",
                _report_json(data),
            )
        )
    return files


# --- The completion certificate ---------------------------------------------------------


def _task_outcome(task: RecipientTask, request: DataRequest, closed_reason: str) -> str:
    if task.status == RecipientTask.Status.ANSWERED:
        return task.get_answer_display()
    if task.status == RecipientTask.Status.CLOSED:
        if closed_reason:
            return _("Closed by staff: %(reason)s") % {"reason": closed_reason}
        if request.status == DataRequest.Status.CANCELLED:
            return _("Cancelled with the request")
        return str(RecipientTask.Status.CLOSED.label)
    if request.status == DataRequest.Status.CANCELLED:
        return _("Cancelled with the request")
    return _("No answer")


def certificate_pdf(*, request_id: int) -> tuple[bytes, str]:
    """The completion certificate: the request, what the portal did itself, and every
    company's answer (who, when, what statement, by which way), in the request's language."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    tasks = list(
        RecipientTask.objects.filter(request=request)
        .select_related("employer")
        .order_by("employer__name", "employer_id")
    )
    # Who closed a task and why, and which staff member recorded an answer received
    # another way: from the timeline (one query).
    closed: dict[int, str] = {}
    recorded_by: dict[int, str] = {}
    for event in (
        RequestEvent.objects.filter(
            request=request,
            task__isnull=False,
            kind__in=[RequestEvent.Kind.CLOSED, RequestEvent.Kind.ANSWERED],
        )
        .select_related("actor_user")
        .order_by("at", "id")
    ):
        if event.kind == RequestEvent.Kind.CLOSED:
            closed[event.task_id] = event.detail
        elif event.actor_user is not None:
            recorded_by[event.task_id] = event.actor_user.display_name or event.actor_user.email
    files = defaultdict(list)
    report_files = []
    for f in (
        RequestFile.objects.filter(request=request)
        .exclude(kind=Kind.CERTIFICATE_PDF)
        .order_by("created_at", "id")
        .values("task_id", "kind", "name", "size", "sha256")
    ):
        (files[f["task_id"]] if f["task_id"] else report_files).append(f)
    language = request.language
    with translation.override(language):
        rows = [
            {
                "task": task,
                "company": task.employer.display_name(language),
                "outcome": _task_outcome(task, request, closed.get(task.pk, "")),
                "answered": task.status == RecipientTask.Status.ANSWERED,
                "refused": task.answer == RecipientTask.Answer.REFUSED,
                "via": task.get_answered_via_display() if task.answered_via else "",
                "staff": recorded_by.get(task.pk, ""),
                "files": files.get(task.pk, []),
            }
            for task in tasks
        ]
        sources = [
            {
                "task": t,
                "outcome": t.get_answer_display() if t.answer else t.get_status_display(),
            }
            for t in SourceTask.objects.filter(request=request)
            .select_related("source")
            .order_by("source__name", "source_id")
        ]
        summary = request.portal_summary or {}
        pdf = pdf_render(
            template=CERTIFICATE_TEMPLATE,
            context={
                "request": request,
                "student": request.student,
                "rows": rows,
                "sources": sources,
                "summary": summary,
                "kept": summary.get("kept") or {},
                "report_files": report_files,
                "answered": sum(1 for row in rows if row["answered"]),
            },
            language=language,
        )
    return pdf, f"{request.reference}-certificate.pdf"
