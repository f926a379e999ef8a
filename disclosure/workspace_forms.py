"""The forms of a company's workspace (issue 19): asking for a link, the list's filters and
search, and one answer for many tasks. Recording is `disclosure.services.workspace`."""

from django import forms
from django.utils.translation import gettext_lazy as _

from disclosure.models import (
    CESSATION_ATTESTATION,
    DELETION_ATTESTATION,
    DataRequest,
    RecipientTask,
)
from disclosure.services.workspace import TaskFilter
from portal.models import Employer
from portal.shared.forms import limits_said


class WorkspaceRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("Your work email address"),
        help_text=_("The address at which our requests about students reach you."),
        max_length=254,
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.fields["email"].error_messages["required"] = _("Type your email address.")
        self.fields["email"].widget.attrs["autocomplete"] = "email"


class TaskFilterForm(forms.Form):
    """The list's GET parameters. An unreadable value is dropped, never an error page."""

    status = forms.ChoiceField(
        label=_("Show"),
        choices=[
            ("open", _("Waiting for your answer")),
            ("answered", _("Answered or closed")),
            ("all", _("All")),
        ],
        required=False,
    )
    overdue = forms.BooleanField(label=_("Only overdue"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind of request"),
        choices=[("", _("Every kind")), *DataRequest.Kind.choices],
        required=False,
    )
    filed_from = forms.DateField(
        label=_("Filed from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    filed_to = forms.DateField(
        label=_("Filed until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label=_("Search"),
        help_text=_("A reference, or part of a student's name or email address."),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"type": "search"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)

    def filters(self) -> TaskFilter:
        self.is_valid()
        data = {
            name: value
            for name, value in getattr(self, "cleaned_data", {}).items()
            if name not in self.errors
        }
        return TaskFilter(
            status=data.get("status") or "open",
            overdue=bool(data.get("overdue")),
            kind=data.get("kind") or "",
            filed_from=data.get("filed_from"),
            filed_to=data.get("filed_to"),
            q=data.get("q") or "",
        )


class BulkAnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label=_("The answer for every task chosen"),
        choices=[
            (RecipientTask.Answer.DELETED, _("We have deleted the data (deletion requests)")),
            (
                RecipientTask.Answer.CORRECTED,
                _("We have corrected the data as asked (correction requests)"),
            ),
            (RecipientTask.Answer.HELD_NONE, _("We held none of this data (any request)")),
        ],
        widget=forms.RadioSelect,
    )
    attestation = forms.BooleanField(label=DELETION_ATTESTATION, required=False)
    name = forms.CharField(label=_("Name of the person answering"), max_length=100)
    role = forms.CharField(
        label=_("Their role"), help_text=_("For example “HR manager”."), max_length=90
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.fields["answer"].error_messages["required"] = _("Choose one of the answers.")
        self.fields["name"].error_messages["required"] = _("Give the name of the person answering.")
        self.fields["role"].error_messages["required"] = _("Give their role.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("answer") == RecipientTask.Answer.DELETED and not cleaned.get("attestation"):
            self.add_error(
                "attestation", _("Tick the confirmation; the answer cannot be recorded without it.")
            )
        return cleaned


class CsvUploadForm(forms.Form):
    """A filled-in CSV of answers, with who answers; read by `csv_plan`."""

    file = forms.FileField(
        label=_("The CSV file with your answers"),
        help_text=_(
            "The file downloaded from this page, with the “answer” column filled in (and "
            "“statement” for “cannot comply”). At most 2 MB, UTF-8 or Shift_JIS."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    # As on each answer page: "deleted" and "stopped" are recorded with what was confirmed.
    attestation = forms.BooleanField(label=DELETION_ATTESTATION, required=False)
    attestation_stopped = forms.BooleanField(label=CESSATION_ATTESTATION, required=False)
    name = forms.CharField(label=_("Name of the person answering"), max_length=100)
    role = forms.CharField(
        label=_("Their role"), help_text=_("For example “HR manager”."), max_length=90
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("use_required_attribute", False)
        kwargs.setdefault("prefix", "csv")
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.fields["file"].error_messages["required"] = _("Choose the CSV file to upload.")
        self.fields["file"].error_messages["empty"] = _("The file is empty.")
        self.fields["name"].error_messages["required"] = _("Give the name of the person answering.")
        self.fields["role"].error_messages["required"] = _("Give their role.")


class DeliveryForm(forms.Form):
    delivery = forms.ChoiceField(
        label=_("How your company is told of new requests"),
        choices=Employer.Delivery.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose one."), "invalid_choice": _("Choose one.")},
    )
