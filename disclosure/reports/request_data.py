"""The report's requests: each with every company's task and answer, its files and its
timeline; and what the site's own systems answered to the request the report answers."""

from collections import defaultdict
from datetime import datetime

from disclosure.models import DataRequest, RecipientTask, RequestEvent, RequestFile, SourceTask
from disclosure.reports._common import _Employers
from portal.models import User


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
