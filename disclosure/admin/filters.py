"""The list filters of the request list and the company task list, with the conditions the
dashboard counts by (NOT_DONE, FAILED_EMAIL), so a figure and the list it links to agree."""

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from disclosure.models import DataRequest, RecipientTask

NOT_DONE = [RecipientTask.Status.QUEUED, RecipientTask.Status.SENT]


FAILED_EMAIL = Q(status=RecipientTask.Status.SENT, email__status="failed")  # `.failed`


def _overdue_tasks():
    """Companies past the due date that have not answered (and were not closed)."""
    return RecipientTask.objects.filter(overdue=True, status__in=NOT_DONE)


def _failed_tasks():
    """Companies whose latest email could not be delivered after every retry."""
    return RecipientTask.objects.filter(FAILED_EMAIL)


class _YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on the Q or expression each subclass's `condition()` returns."""

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.filter(~self.condition())
        return queryset


class OverdueCompanyFilter(_YesNoFilter):
    title = _("has an overdue company")
    parameter_name = "overdue"

    def condition(self):
        return Exists(_overdue_tasks().filter(request=OuterRef("pk")))


class FailedEmailFilter(_YesNoFilter):
    title = _("has a failed email")
    parameter_name = "failed"

    def condition(self):
        return Exists(_failed_tasks().filter(request=OuterRef("pk")))


class RequestOpenFilter(_YesNoFilter):
    title = _("request still open")
    parameter_name = "open"

    def condition(self):
        return Q(request__status__in=DataRequest.OPEN)


class TaskFailedEmailFilter(_YesNoFilter):
    title = _("email failed")
    parameter_name = "failed"

    def condition(self):
        return FAILED_EMAIL
