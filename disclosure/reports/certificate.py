"""The completion certificate: the request, the portal's own part, and every company's and
source's answer, as a PDF in the request's language."""

from collections import defaultdict

from django.utils import translation
from django.utils.translation import gettext as _

from disclosure.models import (
    Correction,
    DataRequest,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
)
from disclosure.reports._common import Kind
from portal.shared.pdf import pdf_render

CERTIFICATE_TEMPLATE = "disclosure/certificate_pdf.html"


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


def _via(task: RecipientTask) -> str:
    """How the answer came; by API, with the key's name."""
    if not task.answered_via:
        return ""
    if task.answered_via == RecipientTask.Via.API and task.answered_client is not None:
        return _("%(via)s, key “%(key)s”") % {
            "via": task.get_answered_via_display(),
            "key": task.answered_client.name,
        }
    return task.get_answered_via_display()


def certificate_pdf(*, request_id: int) -> tuple[bytes, str]:
    """The completion certificate: the request, what the portal did itself, and every
    company's answer (who, when, what statement, by which way), in the request's language."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    tasks = list(
        RecipientTask.objects.filter(request=request)
        .select_related("employer", "answered_client")
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
                "via": _via(task),
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
                "correction": Correction.objects.filter(request=request).first(),
                "answered": sum(1 for row in rows if row["answered"]),
            },
            language=language,
        )
    return pdf, f"{request.reference}-certificate.pdf"
