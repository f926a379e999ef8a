"""The student's request form: kind, scope, report format, message."""

from django import forms
from django.utils.translation import gettext_lazy as _

from disclosure.models import DataRequest
from disclosure.services import Recipient
from portal.models import Employer
from portal.shared.forms import limits_said

Kind = DataRequest.Kind

# One plain sentence per kind: what happens, including what the portal does at once.
KIND_HELP = {
    Kind.DISCLOSURE: _(
        "The portal prepares a report of everything it holds about you (profile, the "
        "policies you accepted, your consent history, which companies received your data "
        "and when, your activity records, your requests) for you to download here, and asks "
        "each company below to tell you what it holds."
    ),
    Kind.DELETION: _(
        "The portal erases your activity records and withdraws your consents at once; it "
        "keeps only the records of which company received your data and when, for 3 years, "
        "because the law requires it. Each company below is asked to delete your data and "
        "confirm it."
    ),
    Kind.CESSATION: _(
        "The portal withdraws your consents at once, so no company receives your data from "
        "now on. Each company below is asked to stop using what it received and confirm it."
    ),
}

SCOPE_ALL = "all"
SCOPE_CHOSEN = "chosen"


class RequestForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What do you ask for?"),
        # A correction has its own form (disclosure/correction_forms.py): it asks what is
        # wrong and what is right, which this one has no place for.
        choices=[(value, label) for value, label in Kind.choices if value != Kind.CORRECTION],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what you ask for.")},
    )
    scope = forms.ChoiceField(
        label=_("Which companies?"),
        choices=[
            (SCOPE_ALL, _("Every company on the list below")),
            (SCOPE_CHOSEN, _("Only the companies I tick below")),
        ],
        widget=forms.RadioSelect,
        initial=SCOPE_ALL,
        required=False,
    )
    employers = forms.MultipleChoiceField(
        label=_("Companies"),
        choices=[],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("That company is not on your list.")},
    )
    delivery_format = forms.ChoiceField(
        label=_("Format of your report (disclosure only)"),
        choices=DataRequest.Format.choices,
        widget=forms.RadioSelect,
        initial=DataRequest.Format.PDF_JSON,
        required=False,
    )
    message = forms.CharField(
        label=_("Message (optional)"),
        help_text=_("Anything you want to add. It is kept with your request."),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=4000,
    )

    def __init__(self, *args, recipients: list[Recipient], language: str, **kwargs):
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.recipients = recipients
        self.language = language
        self.fields["employers"].choices = [
            (str(r.employer.pk), r.employer.display_name(language)) for r in recipients
        ]

    def clean(self):
        data = super().clean()
        if not data.get("scope"):
            data["scope"] = SCOPE_ALL
        if data["scope"] == SCOPE_CHOSEN:
            if not self.recipients:
                self.add_error(
                    "scope", _("No company is on your list, so there is none to choose.")
                )
            elif not data.get("employers") and "employers" not in self.errors:
                self.add_error("employers", _("Tick at least one company, or choose every one."))
        if data.get("kind") != Kind.DISCLOSURE or not data.get("delivery_format"):
            data["delivery_format"] = DataRequest.Format.PDF_JSON
        return data

    def chosen_employers(self) -> list[Employer] | None:
        """None for every recipient, else the ticked companies (already loaded)."""
        if self.cleaned_data["scope"] != SCOPE_CHOSEN:
            return None
        ticked = set(self.cleaned_data["employers"])
        return [r.employer for r in self.recipients if str(r.employer.pk) in ticked]

    def kind_options(self) -> list[dict]:
        return [
            {"widget": widget, "help": KIND_HELP[widget.data["value"]]} for widget in self["kind"]
        ]

    def recipient_rows(self) -> list[dict]:
        """Each company with its reasons, and whether its box is ticked."""
        if self.is_bound:
            ticked = set(self.data.getlist("employers"))
        else:
            ticked = {str(v) for v in self.initial.get("employers", [])}
        return [
            {
                "recipient": r,
                "name": r.employer.display_name(self.language),
                "value": str(r.employer.pk),
                "id": f"id_employers_{r.employer.pk}",
                "checked": str(r.employer.pk) in ticked,
            }
            for r in self.recipients
        ]
