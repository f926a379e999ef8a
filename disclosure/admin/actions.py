"""The staff actions on a request's page, mixed into DataRequestAdmin: extend or cancel the
request; resend, record or close a company's task; call a data source again or close its task."""

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from audit.log import audit_record
from audit.models import AuditEntry
from disclosure.admin.common import (
    ACTION_TEMPLATE,
    CANCEL,
    CLOSE_TASK,
    EXTEND,
    RECORD_ANSWER,
    RESEND,
    days_left_text,
)
from disclosure.admin.forms import AnswerForm, ExtendForm, ReasonForm, _add_service_error
from disclosure.models import DataRequest, RecipientTask, SourceTask
from disclosure.services import (
    recipient_task_answer,
    recipient_task_close,
    recipient_task_resend,
    request_cancel,
    request_extend,
    source_task_close,
    source_task_recall,
)


class DataRequestActionsMixin:
    """Each action is a page with a small form (ReasonForm, ExtendForm, AnswerForm) under its
    own URL of the request (`admin:disclosure_datarequest_<name>`) and its own permission."""

    def get_urls(self):
        def view(function, route, name):
            return path(
                route,
                self.admin_site.admin_view(require_http_methods(["GET", "HEAD", "POST"])(function)),
                name=f"disclosure_datarequest_{name}",
            )

        return [
            view(self.extend_view, "<int:pk>/extend/", "extend"),
            view(self.cancel_view, "<int:pk>/cancel/", "cancel"),
            view(self.task_resend_view, "<int:pk>/tasks/<int:task_pk>/resend/", "task_resend"),
            view(self.task_answer_view, "<int:pk>/tasks/<int:task_pk>/answer/", "task_answer"),
            view(self.task_close_view, "<int:pk>/tasks/<int:task_pk>/close/", "task_close"),
            view(
                self.source_recall_view, "<int:pk>/sources/<int:task_pk>/recall/", "source_recall"
            ),
            view(self.source_close_view, "<int:pk>/sources/<int:task_pk>/close/", "source_close"),
        ] + super().get_urls()

    def _request_for_action(self, request: HttpRequest, pk: int, perm: str) -> DataRequest:
        if not request.user.has_perm(perm):
            raise PermissionDenied
        return get_object_or_404(DataRequest.objects.select_related("student"), pk=pk)

    def _task_for_action(
        self, request: HttpRequest, pk: int, task_pk: int, perm: str
    ) -> RecipientTask:
        data_request = self._request_for_action(request, pk, perm)
        task = get_object_or_404(
            RecipientTask.objects.select_related("employer", "email"),
            pk=task_pk,
            request=data_request,
        )
        task.request = data_request
        return task

    def _action(
        self,
        request: HttpRequest,
        *,
        data_request: DataRequest,
        task: RecipientTask | None = None,
        source_task: SourceTask | None = None,
        form: forms.Form,
        title: str,
        explanation: str,
        submit: str,
        perform: Callable[[dict], str],
        refused: str = "",
    ):
        """GET shows the form; a valid POST calls the service and returns to the request with
        its message; anything refused shows the form again, as it was typed, with the reason."""
        change_url = reverse("admin:disclosure_datarequest_change", args=[data_request.pk])
        if refused:
            # Reached from a stale page: the request or the task is already finished.
            self.message_user(request, refused, messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and form.is_valid():
            try:
                # The change and its audit entry commit together, or neither does.
                with transaction.atomic():
                    done = perform(form.cleaned_data)
            except ValidationError as exc:
                _add_service_error(form, exc)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "subtitle": data_request.reference,
            "data_request": data_request,
            "task": task,
            "source_task": source_task,
            "days_left": days_left_text(data_request),
            "explanation": explanation,
            "form": form,
            "submit": submit,
            "change_url": change_url,
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    @staticmethod
    def _bound(request: HttpRequest) -> dict:
        return {"data": request.POST} if request.method == "POST" else {}

    @staticmethod
    def _request_refusal(data_request: DataRequest) -> str:
        if data_request.is_open:
            return ""
        return _("Request %(reference)s is %(status)s: there is nothing left to do.") % {
            "reference": data_request.reference,
            "status": data_request.get_status_display(),
        }

    @classmethod
    def _task_refusal(cls, task: RecipientTask) -> str:
        if refusal := cls._request_refusal(task.request):
            return refusal
        if task.is_done:
            return _("%(company)s's task is already %(status)s.") % {
                "company": task.employer.name,
                "status": task.get_status_display(),
            }
        return ""

    @staticmethod
    def _audit(request: HttpRequest, name: str, target, changes: dict, reason: str) -> None:
        audit_record(
            action=AuditEntry.Action.ACTION,
            name=name,
            request=request,
            target=target,
            changes=changes,
            reason=reason.strip(),
        )

    def extend_view(self, request: HttpRequest, pk: int):
        data_request = self._request_for_action(request, pk, EXTEND)

        def perform(data):
            due_before = data_request.due_at
            extended = request_extend(
                request=data_request, days=data["days"], reason=data["reason"], by=request.user
            )
            self._audit(
                request,
                EXTEND,
                extended,
                {
                    "due_at": [due_before.isoformat(), extended.due_at.isoformat()],
                    "days": data["days"],
                },
                data["reason"],
            )
            return _(
                "The due date of %(reference)s is now %(date)s. The student has been emailed "
                "the reason."
            ) % {
                "reference": extended.reference,
                "date": date_format(timezone.localtime(extended.due_at), "DATETIME_FORMAT"),
            }

        return self._action(
            request,
            data_request=data_request,
            form=ExtendForm(**self._bound(request)),
            title=_("Extend the due date"),
            explanation=_(
                "The student is emailed the new due date and the reason you give here, "
                "which also appears in their timeline. Companies marked overdue are no longer "
                "overdue until the new date."
            ),
            submit=_("Extend and tell the student"),
            perform=perform,
            refused=self._request_refusal(data_request),
        )

    def cancel_view(self, request: HttpRequest, pk: int):
        data_request = self._request_for_action(request, pk, CANCEL)

        def perform(data):
            status_before = data_request.status
            cancelled = request_cancel(request=data_request, reason=data["reason"], by=request.user)
            self._audit(
                request,
                CANCEL,
                cancelled,
                {"status": [status_before, cancelled.status]},
                data["reason"],
            )
            return _("Request %(reference)s is cancelled.") % {"reference": cancelled.reference}

        return self._action(
            request,
            data_request=data_request,
            form=ReasonForm(**self._bound(request)),
            title=_("Cancel the request"),
            explanation=_(
                "The request stops here: the companies' answer links stop working and no "
                "reminders are sent. What the portal already did is not undone. The reason "
                "appears in the student's timeline."
            ),
            submit=_("Cancel the request"),
            perform=perform,
            refused=self._request_refusal(data_request),
        )

    def task_resend_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, RESEND)

        def perform(data):
            recipient_task_resend(task=task, by=request.user, reason=data["reason"])
            sent = RecipientTask.objects.select_related("email").get(pk=task.pk).email
            self._audit(
                request,
                RESEND,
                task,
                {"answer_link": ["revoked", "new"], "sent_to": sent.to if sent else None},
                data["reason"],
            )
            return _(
                "A new link was emailed to %(company)s (%(email)s); the earlier links no "
                "longer work."
            ) % {"company": task.employer.name, "email": task.employer.primary_contact.email}

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Resend the link to %(company)s") % {"company": task.employer.name},
            explanation=_(
                "The company's privacy contact is emailed the request again with a new answer "
                "link; every earlier link stops working. Check the contact address first if "
                "the last email failed."
            ),
            submit=_("Send a new link"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def task_answer_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, RECORD_ANSWER)

        def perform(data):
            status_before = task.status
            answered = recipient_task_answer(
                task=task,
                answer=data["answer"],
                answered_by=data["answered_by"],
                statement=data["statement"],
                via=RecipientTask.Via.STAFF,
                evidence=data["evidence"],
                staff=request.user,
            )
            self._audit(
                request,
                RECORD_ANSWER,
                answered,
                {
                    "status": [status_before, answered.status],
                    "answer": [None, answered.answer],
                    "answered_by": [None, answered.answered_by],
                    "statement": [None, answered.statement],
                },
                data["evidence"],
            )
            done = _("The answer of %(company)s is recorded.") % {"company": task.employer.name}
            data_request = DataRequest.objects.get(pk=task.request.pk)
            if not data_request.is_open:
                done += " " + _("Request %(reference)s is now %(status)s.") % {
                    "reference": data_request.reference,
                    "status": data_request.get_status_display(),
                }
            return done

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=AnswerForm(**self._bound(request), kind=task.request.kind),
            title=_("Record the answer of %(company)s") % {"company": task.employer.name},
            explanation=_(
                "For an answer that came another way than the link (a letter, an email, a "
                "phone call). The student is emailed the answer, and the request completes "
                "when it was the last company. Your name and the evidence are recorded."
            ),
            submit=_("Record the answer"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def task_close_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, CLOSE_TASK)

        def perform(data):
            status_before = task.status
            recipient_task_close(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                CLOSE_TASK,
                task,
                {"status": [status_before, RecipientTask.Status.CLOSED]},
                data["reason"],
            )
            return _("The task of %(company)s is closed.") % {"company": task.employer.name}

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Close the task of %(company)s") % {"company": task.employer.name},
            explanation=_(
                "Stop waiting for this company: its links stop working and no reminders are "
                "sent. The request is then only partially completed. The reason appears in "
                "the student's timeline."
            ),
            submit=_("Close the task"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def _source_task_for_action(self, request: HttpRequest, pk: int, task_pk: int, perm: str):
        data_request = self._request_for_action(request, pk, perm)
        return get_object_or_404(
            SourceTask.objects.select_related("source", "request__student"),
            pk=task_pk,
            request=data_request,
        )

    @classmethod
    def _source_refusal(cls, task: SourceTask, *, failed_only: bool = False) -> str:
        if refusal := cls._request_refusal(task.request):
            return refusal
        if task.is_done or (failed_only and not task.may_be_called_again):
            return _("The task of %(source)s is %(status)s: there is nothing to do.") % {
                "source": task.source.name,
                "status": task.get_status_display(),
            }
        return ""

    def source_recall_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._source_task_for_action(request, pk, task_pk, RESEND)

        def perform(data):
            source_task_recall(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                RESEND,
                task,
                {"status": [task.status, SourceTask.Status.QUEUED]},
                data["reason"],
            )
            return _("%(source)s will be called again.") % {"source": task.source.name}

        return self._action(
            request,
            data_request=task.request,
            source_task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Call %(source)s again") % {"source": task.source.name},
            explanation=_(
                "For a call that failed (the last error is on the request's page): once the "
                "system's owners have fixed it, the portal calls it again, with its retries. "
                "The reason is recorded in the audit log."
            ),
            submit=_("Call it again"),
            perform=perform,
            refused=self._source_refusal(task, failed_only=True),
        )

    def source_close_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._source_task_for_action(request, pk, task_pk, CLOSE_TASK)

        def perform(data):
            source_task_close(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                CLOSE_TASK,
                task,
                {"status": [task.status, SourceTask.Status.CLOSED]},
                data["reason"],
            )
            return _("The task of %(source)s is closed.") % {"source": task.source.name}

        return self._action(
            request,
            data_request=task.request,
            source_task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Close the task of %(source)s") % {"source": task.source.name},
            explanation=_(
                "Stop waiting for this system: its answer is no longer taken. The request is "
                "then only partially completed. The reason appears in the student's timeline."
            ),
            submit=_("Close the task"),
            perform=perform,
            refused=self._source_refusal(task),
        )
