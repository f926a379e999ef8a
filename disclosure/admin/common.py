"""What the request page, the company task list and the timeline share: each staff action
and the permission it needs, the admin templates, and the displays they have in common."""

from django.db.models import CharField, Value
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from disclosure.models import DataRequest, RecipientTask, RequestEvent

# Each staff action and the permission it needs.
EXTEND = "disclosure.extend_due_date"
CANCEL = "disclosure.cancel_request"
RESEND = "disclosure.resend_answer_link"
RECORD_ANSWER = "disclosure.record_answer"
CLOSE_TASK = "disclosure.close_task"
TASK_ACTIONS = [
    (RESEND, "disclosure_datarequest_task_resend", _("Resend the link")),
    (RECORD_ANSWER, "disclosure_datarequest_task_answer", _("Record an answer")),
    (CLOSE_TASK, "disclosure_datarequest_task_close", _("Close the task")),
]
# On a data source's task: call it again once its owners fixed it (a resend, in effect), or
# stop waiting for it (a closure, like a company's).
SOURCE_ACTIONS = [
    (RESEND, "disclosure_datarequest_source_recall", _("Call it again")),
    (CLOSE_TASK, "disclosure_datarequest_source_close", _("Close the task")),
]
ACTION_TEMPLATE = "admin/disclosure/datarequest/action.html"
READONLY_INLINE_TEMPLATE = "admin/disclosure/datarequest/readonly_tabular.html"


# --- displays shared by the request page and the task list ---------------------------------


def days_left_text(data_request: DataRequest) -> str:
    """Whole days to the due date in the portal's time zone; overdue in words."""
    if not data_request.is_open:
        return "—"
    days = (timezone.localdate(data_request.due_at) - timezone.localdate()).days
    if days < 0:
        return ngettext("%(days)d day overdue", "%(days)d days overdue", -days) % {"days": -days}
    if days == 0:
        return str(_("due today"))
    return ngettext("%(days)d day left", "%(days)d days left", days) % {"days": days}


def _days_left_html(data_request: DataRequest):
    text = days_left_text(data_request)
    if data_request.is_open and data_request.due_at < timezone.now():
        return format_html('<strong class="overdue">{}</strong>', text)
    return text


def _request_link(data_request: DataRequest):
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:disclosure_datarequest_change", args=[data_request.pk]),
        data_request.reference,
    )


def _task_action_links(task: RecipientTask):
    """Links to the staff actions on one company's task, when it still waits for an answer:
    those the staff member may take (`_with_staff_actions` put them on the row)."""
    allowed = set(getattr(task, "staff_may", "").split())
    links = [(name, label) for perm, name, label in TASK_ACTIONS if perm in allowed]
    if not links or task.is_done or not task.request.is_open:
        return "—"
    return format_html_join(
        " · ",
        '<a href="{}">{}</a>',
        (
            (reverse(f"admin:{name}", args=[task.request_id, task.pk]), label)
            for name, label in links
        ),
    )


def _company_link(task: RecipientTask):
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:disclosure_recipienttask_change", args=[task.pk]),
        task.employer.name,
    )


def _email_problem(task: RecipientTask) -> str:
    """Why the company's email failed, as the relay (or the outbox) put it: a failed task is
    staff's to act on, and the request's page is where they look first."""
    if not task.failed:
        return "—"
    return Truncator(task.email.last_error).chars(300) or "—"


def _event_by(event: RequestEvent):
    """Who did it, as staff say it (the actor labels are written for the student)."""
    if event.actor_user_id and event.actor != RequestEvent.Actor.STUDENT:
        return event.actor_user
    return {
        RequestEvent.Actor.STUDENT: _("the student"),
        RequestEvent.Actor.COMPANY: _("the company"),
        RequestEvent.Actor.STAFF: _("support staff"),
        RequestEvent.Actor.SYSTEM: _("the portal"),
    }.get(event.actor, event.actor)


def _with_staff_actions(queryset, request: HttpRequest):
    """The task actions this staff member may take, on each row: a row's display method has
    no request to ask."""
    allowed = " ".join(perm for perm, _name, _label in TASK_ACTIONS if request.user.has_perm(perm))
    return queryset.annotate(staff_may=Value(allowed, CharField()))
