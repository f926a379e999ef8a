"""The student's request pages: file a request, follow it, download its files."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from consent.decorators import data_rights_page
from disclosure.models import DataRequest, RecipientTask, RequestEvent, RequestFile, SourceTask
from disclosure.services import RequestRefused, request_file, request_recipients
from disclosure.services.corrections import correction_of_request
from disclosure.student_forms import RequestForm
from portal.shared.files import attachment_response
from portal.shared.http import page_language
from portal.shared.reauthentication import reauthentication_required
from portal.tasks import MAX_ATTEMPTS

Kind = DataRequest.Kind
Status = DataRequest.Status
TaskStatus = RecipientTask.Status

# Status at a glance: words and an icon, never colour alone.
STATUS_ICONS = {
    Status.SUBMITTED: "○",
    Status.IN_PROGRESS: "◔",
    Status.COMPLETED: "✓",
    Status.PARTIALLY_COMPLETED: "◑",
    Status.CANCELLED: "✕",
}


def _when(value) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")


def _filed_message(filed: DataRequest, companies: int) -> str:
    due = _when(filed.due_at)
    if filed.kind == Kind.DISCLOSURE:
        done = _(
            "We are preparing your report now; you can download it on this page when it is "
            "ready, and we will email you."
        )
    elif filed.kind == Kind.DELETION:
        done = _(
            "Your activity records are erased and your consents withdrawn; the records of "
            "which company received your data are kept for 3 years, as the law requires."
        )
    else:
        done = _("Your consents are withdrawn: no company receives your data from now on.")
    if companies:
        passed = ngettext(
            "We are sending the request to %(count)s company, which is asked to answer by "
            "%(due)s; we follow it until it does.",
            "We are sending the request to %(count)s companies, each asked to answer by "
            "%(due)s; we follow each until it does.",
            companies,
        ) % {"count": companies, "due": due}
    else:
        passed = _("No company received your data, so no company needs to be asked.")
    return " ".join(
        [
            _("Your request %(reference)s is filed.") % {"reference": filed.reference},
            done,
            passed,
            _("There is no fee."),
        ]
    )


@login_required
@data_rights_page
@reauthentication_required
def request_new(request: HttpRequest) -> HttpResponse:
    """The request form. Filing it needs a recent reauthentication (allauth suspends the
    POST, asks for the password, and replays it)."""
    student = request.user
    language = page_language()
    recipients = request_recipients(student=student)
    if request.method == "POST":
        form = RequestForm(request.POST, recipients=recipients, language=language)
        if form.is_valid():
            data = form.cleaned_data
            employers = form.chosen_employers()
            try:
                filed = request_file(
                    student=student,
                    kind=data["kind"],
                    employers=employers,
                    delivery_format=data["delivery_format"],
                    message=data["message"],
                    language=language,
                    recipients=recipients,
                )
            except RequestRefused as refused:
                if refused.code == "duplicate" and refused.existing is not None:
                    form.add_error(
                        None,
                        format_html(
                            '{} <a href="{}">{}</a>',
                            refused.messages[0],
                            reverse("disclosure:request_detail", args=[refused.existing.reference]),
                            _("Follow that request"),
                        ),
                    )
                else:
                    form.add_error("employers", refused.messages[0])
            else:
                companies = len(employers) if employers is not None else len(recipients)
                messages.success(request, _filed_message(filed, companies))
                return redirect("disclosure:request_detail", filed.reference)
    else:
        if request.GET.get("kind") == Kind.CORRECTION:
            return redirect("disclosure:request_correction")
        initial = {}
        if request.GET.get("kind") in Kind.values:
            initial["kind"] = request.GET["kind"]
        form = RequestForm(initial=initial, recipients=recipients, language=language)
    return render(
        request,
        "disclosure/request_new.html",
        {"form": form, "recipients": recipients},
    )


@login_required
@data_rights_page
def request_list(request: HttpRequest) -> HttpResponse:
    requests = (
        DataRequest.objects.filter(student=request.user)
        .annotate(
            task_count=Count("tasks"),
            answered_count=Count("tasks", filter=Q(tasks__status=TaskStatus.ANSWERED)),
        )
        .order_by("-submitted_at", "-pk")
    )
    now = timezone.now()
    rows = [
        {
            "request": r,
            "icon": STATUS_ICONS.get(r.status, ""),
            "late": r.is_open and r.due_at < now,
        }
        for r in requests
    ]
    return render(request, "disclosure/request_list.html", {"rows": rows})


def _failure_reason(email) -> str:
    """Why a company's email failed, in words a student reads (staff see the relay's own
    answer): the address missing, refused outright (a 5xx), or still refused after every
    retry."""
    if not email.to:
        return _("The company has not given us a privacy contact yet.")
    if email.attempts < MAX_ATTEMPTS:  # given up before the last try: a 5xx, final
        return _("The company's mail server refused it.")
    return _("The company's mail server did not accept it after several tries.")


def _task_state(task: RecipientTask) -> tuple[str, str, str]:
    """(icon, words, css class) for a company's task."""
    if task.status == TaskStatus.ANSWERED:
        return "✓", _("Answered: %(answer)s") % {"answer": task.get_answer_display()}, "done"
    if task.status == TaskStatus.CLOSED:
        return "■", _("Closed by our staff"), "closed"
    if task.failed:
        return (
            "⚠︎",
            " ".join(
                [
                    _("The email could not be delivered — our staff are on it."),
                    _failure_reason(task.email),
                ]
            ),
            "problem",
        )
    if task.status == TaskStatus.QUEUED:
        return "○", _("Waiting to be sent"), "waiting"
    if task.sent_at is None:  # the company is told in a digest (disclosure/services/digests.py)
        return "○", _("To be sent in the company's next summary email"), "waiting"
    return "…", _("Sent; waiting for the company's answer"), "waiting"


def _source_state(task: SourceTask) -> tuple[str, str, str]:
    """(icon, words, css class) for one of the site's own systems. The technical error is
    for staff (the admin); the student is told staff are on it."""
    if task.status == SourceTask.Status.ANSWERED:
        return "✓", _("Answered: %(answer)s") % {"answer": task.get_answer_display()}, "done"
    if task.status == SourceTask.Status.CLOSED:
        return "■", _("Closed by our staff"), "closed"
    if task.status == SourceTask.Status.FAILED:
        return "⚠︎", _("The system could not be reached — our staff are on it."), "problem"
    if task.overdue:
        return "⚠︎", _("Overdue: no answer by the due date. Our staff are following up."), "problem"
    if task.status == SourceTask.Status.QUEUED and task.attempts:
        return "…", _("Not reached yet; trying again"), "waiting"
    if task.status == SourceTask.Status.QUEUED:
        return "○", _("Waiting to be passed on"), "waiting"
    return "…", _("Passed on; waiting for its answer"), "waiting"


# Events whose stored detail only repeats the company's name (shown in the page's
# language instead) or the portal's summary (told in words in its own section).
_DETAIL_REPEATS = {
    RequestEvent.Kind.SENT,
    RequestEvent.Kind.SEND_FAILED,
    RequestEvent.Kind.REMINDED,
    RequestEvent.Kind.OVERDUE,
    RequestEvent.Kind.PORTAL_DONE,
}


def _event_detail(event: RequestEvent, source_answers: dict[str, str]) -> str:
    if event.kind == RequestEvent.Kind.PORTAL_DONE and event.actor == RequestEvent.Actor.STAFF:
        return event.detail  # staff's answer to a disputed result, written for the student
    if event.kind in _DETAIL_REPEATS:
        return ""
    if event.kind == RequestEvent.Kind.SOURCE_ANSWERED:
        # Stored as "<source>: <answer in the language of the moment it came>": the answer
        # is told in the page's language, from the source's task.
        name = event.detail.partition(": ")[0]
        if name in source_answers:
            answer = source_answers[name]
            return _("%(source)s answered: %(answer)s") % {"source": name, "answer": answer}
        return name
    if event.kind in (RequestEvent.Kind.SOURCE_RETRY, RequestEvent.Kind.SOURCE_FAILED):
        # "<source>: <technical error> (attempt n)": the error is for staff, in the admin.
        return event.detail.partition(": ")[0]
    if event.kind == RequestEvent.Kind.ANSWERED and event.task_id:
        return _("Answer: %(answer)s") % {"answer": event.task.get_answer_display()}
    return event.detail  # a staff reason, written for the student to read


@login_required
@data_rights_page
def request_detail(request: HttpRequest, reference: str) -> HttpResponse:
    """One request: status, progress, each company, what the portal did, files, timeline.
    A fixed number of queries, however many companies and events."""
    data_request = get_object_or_404(DataRequest, reference=reference, student=request.user)
    language = page_language()
    tasks = list(
        RecipientTask.objects.filter(request=data_request)
        .select_related("employer", "email")  # `task.failed` reads the email's status
        .defer("email__body_text", "email__body_html")  # last_error: why one failed
        .order_by("employer__name", "pk")
    )
    sources = [
        {"task": t, **dict(zip(("icon", "state", "css"), _source_state(t), strict=True))}
        for t in SourceTask.objects.filter(request=data_request)
        .select_related("source")
        .defer("data")
        .order_by("source__name", "pk")
    ]
    files = list(
        RequestFile.objects.filter(request=data_request)
        .defer("content")
        .order_by("created_at", "pk")
    )
    events = list(
        RequestEvent.objects.filter(request=data_request)
        .select_related("task__employer")
        .order_by("-at", "-pk")
    )
    company_files: dict[int, list[RequestFile]] = {}
    for f in files:
        if f.kind == RequestFile.Kind.COMPANY_FILE and f.task_id:
            company_files.setdefault(f.task_id, []).append(f)
    reports = [f for f in files if f.kind in RequestFile.REPORT_KINDS]
    certificate = next((f for f in files if f.kind == RequestFile.Kind.CERTIFICATE_PDF), None)

    companies = []
    for task in tasks:
        icon, words, css = _task_state(task)
        companies.append(
            {
                "task": task,
                "name": task.employer.display_name(language),
                "icon": icon,
                "state": words,
                "css": css,
                "overdue": task.overdue and not task.is_done,
                "files": company_files.get(task.pk, []),
            }
        )
    answered = sum(1 for t in tasks if t.status == TaskStatus.ANSWERED)
    closed = sum(1 for t in tasks if t.status == TaskStatus.CLOSED)
    source_answers = {
        s["task"].source.name: s["task"].get_answer_display() for s in sources if s["task"].answer
    }
    timeline = [
        {
            "event": e,
            "company": e.task.employer.display_name(language) if e.task_id else "",
            "detail": _event_detail(e, source_answers),
            # A site system's answer is its own, not the portal's.
            "actor": _("the job site's system")
            if e.kind == RequestEvent.Kind.SOURCE_ANSWERED
            else e.get_actor_display(),
        }
        for e in events
    ]
    summary = data_request.portal_summary or {}
    # A request closed longer ago than the retention period has had its files deleted
    # (backoffice/retention.py): say so rather than "being prepared".
    files_removed = (
        not files
        and not data_request.is_open
        and data_request.completed_at is not None
        and data_request.completed_at
        < timezone.now() - timedelta(days=settings.RETENTION_REQUEST_FILE_DAYS)
    )
    return render(
        request,
        "disclosure/request_detail.html",
        {
            "data_request": data_request,
            "icon": STATUS_ICONS.get(data_request.status, ""),
            "late": data_request.is_open and data_request.due_at < timezone.now(),
            "companies": companies,
            "sources": sources,
            "total": len(tasks),
            "answered": answered,
            "closed": closed,
            "summary": summary,
            "kept": summary.get("kept") or {},
            "reports": reports,
            "certificate": certificate,
            "files_removed": files_removed,
            "retention_days": settings.RETENTION_REQUEST_FILE_DAYS,
            "timeline": timeline,
            "correction": correction_of_request(data_request)
            if data_request.kind == Kind.CORRECTION
            else None,
        },
    )


@login_required
@data_rights_page
def request_file_download(request: HttpRequest, reference: str, file_id: int) -> HttpResponse:
    """A file of the student's own request, as an attachment; anyone else's is a 404."""
    stored = (
        RequestFile.objects.filter(
            pk=file_id, request__reference=reference, request__student=request.user
        )
        .only("kind", "name", "content_type", "content")
        .first()
    )
    if stored is None:
        raise Http404
    return attachment_response(
        content=bytes(stored.content),
        filename=stored.name,
        content_type=stored.content_type,
        # A company's file came from outside: checked again as it goes out, whatever was
        # stored before the upload rules were what they are.
        check_content=stored.kind == RequestFile.Kind.COMPANY_FILE,
    )
