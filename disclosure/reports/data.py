"""The disclosure report's data: everything the portal holds about a student, as plain
values, in a fixed number of queries."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.utils import timezone

from audit.models import StaffRead
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Provision
from disclosure.models import DataRequest
from disclosure.reports._common import _PURPOSE_FIELDS, _Employers, _Purposes
from disclosure.reports.activity import ActivitySummary, activity_chunks, activity_record
from disclosure.reports.inferences import InferenceContext, InferenceSummary, inference_chunks
from disclosure.reports.request_data import _requests, _sources
from portal.models import Language, User

# Bumped when a key is renamed or removed; adding keys keeps the version.
REPORT_FORMAT = "student-data-portal/disclosure-report/1.0"


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


@dataclass
class _Report:
    """A report being made. `data` holds the JSON's keys in their order: every section is
    gathered at once, but for the activity records and the inferences, which a pass over
    the student's rows hands to `data` (a list) or to the files; `close` then fills the keys
    that depend on them (their summaries, the counts, the companies named)."""

    data: dict
    employers: _Employers
    purposes: _Purposes
    inferences: InferenceSummary
    activity: ActivitySummary = field(default_factory=ActivitySummary)

    def close(self) -> None:
        data = self.data
        for employer_id, name, name_en in self.activity.employers():
            self.employers.add(employer_id, name, name_en)
        for employer_id, name, name_en in self.inferences.employers():
            self.employers.add(employer_id, name, name_en)
        data["activity_summary"] = self.activity.as_data()
        data["inference_summary"] = self.inferences.as_data()
        streamed = {
            "activity_records": self.activity.records,
            "inferences": self.inferences.results,
        }
        data["counts"] = {
            key: streamed[key] if key in streamed else len(data[key])
            for key in (
                "policy_acceptances",
                "consent_events",
                "consents",
                "provisions",
                "activity_records",
                "inferences",
                "requests",
                "staff_looks",
            )
        }
        data["employers"] = self.employers.listed()
        data["purposes"] = self.purposes.listed()


def _gather(student: User, *, request: DataRequest | None = None) -> _Report:
    """The report with datetime values (the PDF formats them; the JSON writes them ISO), its
    activity records not yet read."""
    employers, purposes = _Employers(), _Purposes()
    addresses = list(
        EmailAddress.objects.filter(user=student)
        .order_by("-primary", "email")
        .values("email", "verified", "primary")
    )
    consent_events = _consent_events(student, employers, purposes)
    inferences = InferenceContext(student)
    provisions = _provisions(student, employers, purposes)
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
        "activity_records": None,  # the pass's
        "inferences": None,  # the pass's, after the activity records
        "activity_summary": None,  # filled by close()
        "inference_summary": None,  # likewise
        "inference_models": inferences.models_data(),
        "inference_objections": inferences.objections_data(),
        "requests": _requests(student, employers),
        "sources": [] if request is None else _sources(request),
        "staff_looks": _staff_looks(student),
        "counts": None,
        "employers": None,
        "purposes": None,
    }
    return _Report(
        data=data,
        employers=employers,
        purposes=purposes,
        inferences=InferenceSummary(inferences),
    )


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
    queries. With `request`, the report says which request it answers. Every activity record
    and every inference is in the dictionary: the files stream them instead
    (`disclosure_report_files`)."""
    report = _gather(student, request=request)
    records = []
    for chunk in activity_chunks(student):
        report.activity.add(chunk)
        records.extend(activity_record(row) for row in chunk)
    report.data["activity_records"] = records
    results = []
    for chunk in inference_chunks(student):
        report.inferences.add(chunk)
        results.extend(report.inferences.context.record(row) for row in chunk)
    report.data["inferences"] = results
    report.close()
    return _jsonable(report.data)
