"""A company's task as the company may see it: the item `GET /api/v1/requests` lists and a
webhook pushes (what the answer page shows, and no more)."""

from collections import defaultdict

from django.utils import translation

from consent.models import Provision
from disclosure.models import Correction, RecipientTask
from portal.models import Language

# The answer page lists at most this many of what the company received; so do the items.
PROVISION_ROWS = 500
OPEN_STATUSES = (RecipientTask.Status.QUEUED, RecipientTask.Status.SENT)


def _company_status(task: RecipientTask) -> str:
    return "open" if task.status in OPEN_STATUSES else task.status


def _language() -> str:
    return Language.EN if (translation.get_language() or "").startswith("en") else Language.JA


def task_items_provisions(tasks: list[RecipientTask]) -> dict[tuple[int, int], list[dict]]:
    """What each company received about each student, newest first, at most as many rows
    as the answer page lists: one query for the page."""
    if not tasks:
        return {}
    language = _language()
    rows: dict[tuple[int, int], list[dict]] = defaultdict(list)
    provisions = (
        Provision.objects.filter(
            employer_id=tasks[0].employer_id,
            student_id__in={task.request.student_id for task in tasks},
        )
        .select_related("purpose")
        .order_by("-provided_at", "-id")
    )
    for p in provisions:
        found = rows[(p.student_id, p.employer_id)]
        if len(found) < PROVISION_ROWS:
            found.append(
                {
                    "purpose": p.purpose.code,
                    "purpose_title": p.purpose.title(language),
                    "data_items": p.data_items,
                    "provided_at": p.provided_at,
                    "first_provided_at": p.first_provided_at,
                }
            )
    return rows


def _answer_json(task: RecipientTask) -> dict | None:
    if task.status != RecipientTask.Status.ANSWERED:
        return None
    return {
        "answer": task.answer,
        "answered_at": task.answered_at,
        "answered_by": task.answered_by,
        "statement": task.statement,
        "via": task.answered_via,
    }


def _correction_json(data_request) -> dict | None:
    """What a correction asks (the answer page's card): which data, what is wrong, what is
    right, and what the portal did. Loaded with the task (`select_related`)."""
    try:
        correction = data_request.correction
    except Correction.DoesNotExist:
        return None
    return {
        "target": correction.target,
        "data": correction.target_label or correction.previous_value,
        "wrong": correction.wrong,
        "right": correction.right,
        "portal": correction.outcome,
    }


def task_item(task: RecipientTask, provisions: list[dict]) -> dict:
    """What the answer page shows the company (templates/disclosure/answer.html),
    and no more: the request, the student's name and registered email, the dates, what the
    company received, and its answer."""
    data_request = task.request
    student = data_request.student
    return {
        "reference": data_request.reference,
        "kind": data_request.kind,
        # The page's two cases: data the company received (listed), or none but a consent
        # to receive it, which is why the request came.
        "scope": "received_data"
        if provisions or not (task.reasons or {}).get("live_grant")
        else "consent_only",
        "status": _company_status(task),
        "filed_at": data_request.submitted_at,
        "due_at": data_request.due_at,
        "reminders_sent": task.reminders_sent,
        "student": {"name": student.display_name, "email": student.email},
        "provisions": provisions,
        "answer": _answer_json(task),
        "correction": _correction_json(data_request),
        "changed_at": task.changed_at,
    }
