"""The student's correction form (/requests/new/correction/): what is wrong, in their words,
and what is right; which data; which companies. One page without script: every field is
shown, and what each target needs is said beside it."""

from django import forms
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from disclosure.models import Correction
from disclosure.services import Recipient
from disclosure.services.corrections import DISPLAY_NAME_MAX, MAX_WORDS
from disclosure.student_forms import SCOPE_ALL, SCOPE_CHOSEN
from inferences.models import Inference
from portal.models import ActivityRecord, Employer
from portal.shared.forms import limits_said

Target = Correction.Target

# The newest records and results offered in the lists (a long history is not a phone's list).
CHOICES_SHOWN = 100

TARGET_HELP = {
    Target.PROFILE: _(
        "Your name as the portal holds it. The portal corrects it at once, and each company "
        "below is asked to correct it too."
    ),
    Target.ACTIVITY: _(
        "A page view, search or application the job site recorded. The portal marks it "
        "disputed at once, and each company given your data since it was recorded is asked "
        "to correct it."
    ),
    Target.INFERENCE: _(
        "A score or prediction the site made about you. It is marked disputed at once and "
        "staff answer you; the company it was made for is asked to correct it if it was "
        "given the result."
    ),
    Target.COMPANY: _(
        "Something a company holds about you that the portal does not, in your words. Each "
        "company below is asked to correct it."
    ),
}


class CorrectionForm(forms.Form):
    target = forms.ChoiceField(
        label=_("What is wrong?"),
        choices=Target.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what is wrong.")},
    )
    activity = forms.TypedChoiceField(
        label=_("Which activity record (if that is what is wrong)"),
        coerce=int,
        choices=[],
        required=False,
        empty_value=None,
    )
    inference = forms.TypedChoiceField(
        label=_("Which result (if that is what is wrong)"),
        coerce=int,
        choices=[],
        required=False,
        empty_value=None,
    )
    wrong = forms.CharField(
        label=_("What is wrong, in your words"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_WORDS,
        error_messages={"required": _("Say what is wrong.")},
    )
    right = forms.CharField(
        label=_("What is right"),
        help_text=_("For your name: your name as it should be (needed)."),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_WORDS,
        required=False,
    )
    scope = forms.ChoiceField(
        label=_("Which companies? (your name, or data a company holds)"),
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

    def __init__(
        self,
        *args,
        recipients: list[Recipient],
        activities: list[ActivityRecord],
        inferences: list[Inference],
        language: str,
        **kwargs,
    ):
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.recipients = recipients
        self.language = language
        self._activities = {a.pk: a for a in activities}
        self._inferences = {i.pk: i for i in inferences}
        self.fields["activity"].choices = [("", _("— choose a record —"))] + [
            (a.pk, _activity_label(a)) for a in activities
        ]
        self.fields["inference"].choices = [("", _("— choose a result —"))] + [
            (i.pk, _inference_label(i, language)) for i in inferences
        ]
        self.fields["employers"].choices = [
            (str(r.employer.pk), r.employer.display_name(language)) for r in recipients
        ]

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if not data.get("scope"):
            data["scope"] = SCOPE_ALL
        if target == Target.PROFILE:
            right = (data.get("right") or "").strip()
            if not right and "right" not in self.errors:
                self.add_error("right", _("Say what your name should be."))
            elif len(right) > DISPLAY_NAME_MAX:
                self.add_error(
                    "right",
                    _("A name has at most %(max)d characters.") % {"max": DISPLAY_NAME_MAX},
                )
        if target == Target.ACTIVITY and data.get("activity") is None:
            self.add_error("activity", _("Choose the activity record that is wrong."))
        if target == Target.INFERENCE and data.get("inference") is None:
            self.add_error("inference", _("Choose the result that is wrong."))
        if target in (Target.PROFILE, Target.COMPANY) and data["scope"] == SCOPE_CHOSEN:
            if not data.get("employers") and "employers" not in self.errors:
                self.add_error("employers", _("Tick at least one company, or choose every one."))
        return data

    def chosen_activity(self) -> ActivityRecord | None:
        return self._activities.get(self.cleaned_data.get("activity"))

    def chosen_inference(self) -> Inference | None:
        return self._inferences.get(self.cleaned_data.get("inference"))

    def chosen_employers(self) -> list[Employer] | None:
        if self.cleaned_data["scope"] != SCOPE_CHOSEN:
            return None
        ticked = set(self.cleaned_data["employers"])
        return [r.employer for r in self.recipients if str(r.employer.pk) in ticked]

    def target_options(self) -> list[dict]:
        return [
            {"widget": widget, "help": TARGET_HELP[widget.data["value"]]}
            for widget in self["target"]
        ]

    def recipient_rows(self) -> list[dict]:
        ticked = set(self.data.getlist("employers")) if self.is_bound else set()
        return [
            {
                "name": r.employer.display_name(self.language),
                "value": str(r.employer.pk),
                "id": f"id_employers_{r.employer.pk}",
                "checked": str(r.employer.pk) in ticked,
            }
            for r in self.recipients
        ]


def _activity_label(record: ActivityRecord) -> str:
    when = date_format(timezone.localtime(record.occurred_at), "DATETIME_FORMAT")
    detail = f" · {record.detail[:60]}" if record.detail else ""
    return f"{when} · {record.get_kind_display()}{detail}"


def _inference_label(inference: Inference, language: str) -> str:
    when = date_format(timezone.localtime(inference.made_at), "DATE_FORMAT")
    return f"{inference.model.name(language)} · {inference.output} · {when}"
