"""The forms of the staff actions on a request (a reason; the days of an extension; a
company's answer), and how a service's refusal is shown on them."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from disclosure.models import RecipientTask
from disclosure.services import ANSWERS_BY_KIND


def _textarea():
    return forms.Textarea(attrs={"rows": 4, "cols": 70})


class ReasonForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=_textarea())


class ExtendForm(ReasonForm):
    days = forms.IntegerField(label=_("Extend by (days)"), min_value=1, max_value=60)

    field_order = ["days", "reason"]


class AnswerForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    answer = forms.ChoiceField(label=_("Answer"))
    answered_by = forms.CharField(
        label=_("Responsible person at the company"),
        max_length=200,
        help_text=_("The name of the person who gave the answer, as on their message."),
    )
    statement = forms.CharField(
        label=_("Their statement"),
        required=False,
        widget=_textarea(),
        help_text=_("Required when the company cannot comply: why."),
    )
    evidence = forms.CharField(
        label=_("Evidence"),
        widget=_textarea(),
        help_text=_("How the answer came (letter, email, phone call), when, and where it is kept."),
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(RecipientTask.Answer.choices)
        self.fields["answer"].choices = [
            ("", "---------"),
            *((value, labels[value]) for value in ANSWERS_BY_KIND[kind]),
        ]


def _add_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Put the service's refusal next to the field it is about, or above the form."""
    field = getattr(exc, "code", None)
    for message in exc.messages:
        form.add_error(field if field in form.fields else None, message)
