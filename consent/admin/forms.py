"""The forms of the consent admin: the reason kept in the audit log, a consent change on a
student's written instruction, and a new API key."""

from django import forms
from django.utils.translation import gettext_lazy as _

from consent.api.keys import EMPLOYER_ONLY_SCOPES, PIPELINE_ONLY_SCOPES
from consent.models import ApiClient, ConsentEvent, Purpose
from portal.models import Employer


def _textarea(rows=3):
    return forms.Textarea(attrs={"rows": rows, "cols": 70})


class AuditReasonForm(forms.Form):
    """The reason a staff member gives for an action, kept with it in the audit log."""

    required_css_class = "required"

    reason = forms.CharField(
        label=_("Reason (kept in the audit log)"),
        max_length=2000,
        required=False,
        widget=_textarea(2),
    )


class StaffConsentForm(forms.Form):
    """A grant or withdrawal the student asked for in writing, entered by staff."""

    required_css_class = "required"
    error_css_class = "errors"

    employer = forms.ModelChoiceField(
        label=_("Company"), queryset=Employer.objects.filter(is_active=True).order_by("name")
    )
    purpose = forms.ModelChoiceField(
        label=_("Purpose"), queryset=Purpose.objects.filter(requires_opt_in=True).order_by("code")
    )
    action = forms.ChoiceField(
        label=_("Change"),
        choices=[
            (ConsentEvent.Action.GRANT, _("Grant")),
            (ConsentEvent.Action.WITHDRAW, _("Withdraw")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("The student's written instruction"),
        max_length=2000,
        widget=_textarea(4),
        help_text=_(
            "What the student asked, how (letter, email) and when, and where it is kept. "
            "It is recorded with the change, shown to the student and kept in the audit log."
        ),
    )


class ApiKeyCreateForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Who the key is for, e.g. “Analytics pipeline” or “Aoba Systems HR”."),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=ApiClient.Kind.choices, widget=forms.RadioSelect
    )
    employer = forms.ModelChoiceField(
        label=_("Company"),
        queryset=Employer.objects.filter(is_active=True).order_by("name"),
        required=False,
        help_text=_("For a company's key: it sees only that company's rows."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiClient.Scope.choices,
        initial=[ApiClient.Scope.CONSENTS],
        widget=forms.CheckboxSelectMultiple,
        required=False,  # none ticked: consents, what every key could do before scopes
        help_text=_(
            "activity:write and inferences:write are for the job site's own key, never a "
            "company's; requests:read and requests:answer are for a company's key only."
        ),
    )
    reason = AuditReasonForm.base_fields["reason"]

    def clean(self):
        data = super().clean()
        kind, employer = data.get("kind"), data.get("employer")
        if kind == ApiClient.Kind.EMPLOYER and employer is None:
            self.add_error("employer", _("Choose the company the key is for."))
        if kind == ApiClient.Kind.PIPELINE and employer is not None:
            self.add_error("employer", _("The pipeline's key is for every company: choose none."))
        data["scopes"] = data.get("scopes") or [ApiClient.Scope.CONSENTS]
        if kind == ApiClient.Kind.EMPLOYER and PIPELINE_ONLY_SCOPES & set(data["scopes"]):
            self.add_error(
                "scopes", _("A company's key cannot send activity records or inferences.")
            )
        if kind == ApiClient.Kind.PIPELINE and EMPLOYER_ONLY_SCOPES & set(data["scopes"]):
            self.add_error("scopes", _("Only a company's key can read and answer its requests."))
        return data
