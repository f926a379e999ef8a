"""The company answer forms of /r/<token>/: one form per kind of request.

Each is a single form with the answer as radio buttons (none chosen in advance) and the
fields each answer needs; `clean()` asks for the fields of the chosen answer only. The
forms check what a company types and uploads; recording the answer, once, is
`disclosure.services.recipient_task_answer`.
"""

import os

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from disclosure.models import (
    CESSATION_ATTESTATION,
    DELETION_ATTESTATION,
    DataRequest,
    RecipientTask,
)
from portal.shared.files import EXTENSIONS, content_matches, looks_like_markup, name_fits_type
from portal.shared.forms import limits_said

Answer = RecipientTask.Answer

# What a browser may send for an allowed type under another name (Windows sends a CSV as
# Excel and a ZIP as x-zip-compressed), keyed by the type and the file's extension.
CONTENT_TYPE_ALIASES = {
    ("application/vnd.ms-excel", ".csv"): "text/csv",
    ("application/x-zip-compressed", ".zip"): "application/zip",
    ("application/x-zip", ".zip"): "application/zip",
    ("text/json", ".json"): "application/json",
}


def _file_type_names() -> str:
    names = {
        "application/pdf": "PDF",
        "text/csv": "CSV",
        "text/plain": "TXT",
        "application/json": "JSON",
        "application/zip": "ZIP",
    }
    return ", ".join(names.get(t, t) for t in settings.COMPANY_FILE_TYPES)


class CompanyAnswerForm(forms.Form):
    """What every company answer has: the choice and the responsible person's name."""

    kind: str = ""
    choices: list[tuple[str, str]] = []
    # The hint under each choice, saying what it means and what else it needs.
    hints: dict[str, str] = {}
    # The fields that belong to one answer only, shown with it and required when chosen.
    fields_for: dict[str, list[str]] = {}
    # A shorter name for a field in the error summary than its label.
    summary_labels: dict[str, str] = {"attestation": _("Confirmation")}

    answer = forms.ChoiceField(label=_("Your answer"), widget=forms.RadioSelect)
    answered_by = forms.CharField(
        label=_("Name of the person responsible for this answer"),
        help_text=_("Your name and position, e.g. “Hanako Sato, HR manager”."),
        max_length=200,
    )
    reason = forms.CharField(
        label=_("Why you cannot comply"),
        help_text=_("The student is told this reason. Please be specific."),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=4000,
        required=False,
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)
        limits_said(self)
        self.fields["answer"].choices = self.choices
        self.fields["answer"].error_messages["required"] = _("Choose one of the answers.")
        self.fields["answered_by"].error_messages["required"] = _(
            "Give the name of the person responsible."
        )

    def clean_answered_by(self) -> str:
        name = " ".join(self.cleaned_data["answered_by"].split())
        if not name:
            raise forms.ValidationError(_("Give the name of the person responsible."))
        return name

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("answer") == Answer.REFUSED and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", _("Say why you cannot comply."))
        return cleaned

    # --- what the page and the service read ----------------------------------------------

    def options(self) -> list[dict]:
        """The radio buttons with their hints and the fields that go with each."""
        bound = self["answer"]
        return [
            {
                "radio": radio,
                "value": radio.data["value"],
                "hint": self.hints.get(radio.data["value"], ""),
                "fields": [self[name] for name in self.fields_for.get(radio.data["value"], [])],
            }
            for radio in bound
        ]

    def error_links(self) -> list[dict]:
        """Each error with the id of the control it is about, for the error summary."""
        links = [{"anchor": "", "label": "", "message": e} for e in self.non_field_errors()]
        # In the order of the page: the choice, each choice's fields, then the name.
        order = ["answer"]
        for value, _label in self.choices:
            order += [name for name in self.fields_for.get(value, []) if name not in order]
        order += [name for name in self.fields if name not in order and name != "answered_by"]
        order.append("answered_by")
        for name in order:
            errors = self.errors.get(name)
            if not errors or name == NON_FIELD_ERRORS:
                continue
            anchor = f"{self[name].auto_id}_0" if name == "answer" else self[name].auto_id
            for message in errors:
                label = self.summary_labels.get(name) or self[name].label
                links.append({"anchor": anchor, "label": label, "message": message})
        return links

    def statement(self) -> str:
        """The statement recorded with the answer, which the student and the certificate
        show: the reason, the data described, or the attestation the company ticked."""
        answer = self.cleaned_data["answer"]
        if answer == Answer.REFUSED:
            return self.cleaned_data["reason"].strip()
        return ""

    def file(self) -> tuple[str, str, bytes] | None:
        return None


class _AttestationForm(CompanyAnswerForm):
    """Deletion and cessation: the act, confirmed by an attestation, or none held, or not."""

    act: str = ""

    attestation = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attestation"].label = self.attestation_text

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("answer") == self.act and not cleaned.get("attestation"):
            self.add_error(
                "attestation", _("Tick the confirmation; the answer cannot be recorded without it.")
            )
        return cleaned

    def statement(self) -> str:
        if self.cleaned_data["answer"] == self.act:
            return str(self.attestation_text)
        return super().statement()


class DeletionAnswerForm(_AttestationForm):
    kind = DataRequest.Kind.DELETION
    act = Answer.DELETED
    choices = [
        (Answer.DELETED, _("We have deleted the data")),
        (Answer.HELD_NONE, _("We held none of this data")),
        (Answer.REFUSED, _("We cannot comply")),
    ]
    hints = {
        Answer.DELETED: _(
            "Every copy, in every system and file, and every score or other result made from "
            "it. Please confirm below."
        ),
        Answer.HELD_NONE: _("We never had, or no longer have, any of the data listed above."),
        Answer.REFUSED: _("Tell us why; the student is told your reason."),
    }
    fields_for = {Answer.DELETED: ["attestation"], Answer.REFUSED: ["reason"]}
    attestation_text = DELETION_ATTESTATION


class CessationAnswerForm(_AttestationForm):
    kind = DataRequest.Kind.CESSATION
    act = Answer.STOPPED
    choices = [
        (Answer.STOPPED, _("We have stopped using the data")),
        (Answer.HELD_NONE, _("We held none of this data")),
        (Answer.REFUSED, _("We cannot comply")),
    ]
    hints = {
        Answer.STOPPED: _(
            "No further use of the data or of any score made from it, and no passing it on. "
            "Please confirm below."
        ),
        Answer.HELD_NONE: _("We never had, or no longer have, any of the data listed above."),
        Answer.REFUSED: _("Tell us why; the student is told your reason."),
    }
    fields_for = {Answer.STOPPED: ["attestation"], Answer.REFUSED: ["reason"]}
    attestation_text = CESSATION_ATTESTATION


class DisclosureAnswerForm(CompanyAnswerForm):
    kind = DataRequest.Kind.DISCLOSURE
    choices = [
        (Answer.DISCLOSED, _("Here is the data we hold")),
        (Answer.HELD_NONE, _("We hold none of this student's data")),
        (Answer.REFUSED, _("We cannot comply")),
    ]
    hints = {
        Answer.DISCLOSED: _(
            "Describe every item of the student's data you hold, including scores or results "
            "made from it; attach a file if that is easier."
        ),
        Answer.HELD_NONE: _(
            "We do not have any of the data listed above, or anything made from it."
        ),
        Answer.REFUSED: _("Tell us why; the student is told your reason."),
    }
    fields_for = {Answer.DISCLOSED: ["held_data", "upload"], Answer.REFUSED: ["reason"]}

    held_data = forms.CharField(
        label=_("The data you hold about the student"),
        help_text=_("Each item and its value, where it came from, and what you use it for."),
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=20000,
        required=False,
    )
    upload = forms.FileField(label=_("A file with the data (optional)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["upload"].help_text = _(
            "%(types)s, at most %(size)s. The student receives it as you send it."
        ) % {
            "types": _file_type_names(),
            "size": filesizeformat(settings.COMPANY_FILE_MAX_BYTES),
        }
        self.fields["upload"].widget.attrs["accept"] = ",".join(settings.COMPANY_FILE_TYPES)
        self._file: tuple[str, str, bytes] | None = None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("answer") != Answer.DISCLOSED:
            return cleaned  # a file sent with another answer is not kept
        if not (cleaned.get("held_data") or "").strip():
            self.add_error(
                "held_data",
                _("Describe the data you hold (if it is all in the file, say so here)."),
            )
        upload = cleaned.get("upload")
        if upload:
            try:
                self._file = self._checked_file(upload)
            except forms.ValidationError as error:
                self.add_error("upload", error)
        return cleaned

    def _checked_file(self, upload) -> tuple[str, str, bytes]:
        """The upload's name, type and bytes, if it is of an allowed type and size and its
        content is what its type says (the browser's word alone is not taken)."""
        limit = settings.COMPANY_FILE_MAX_BYTES
        too_large = forms.ValidationError(
            _("The file is too large (%(size)s). Send at most %(max)s, please.")
            % {"size": filesizeformat(upload.size), "max": filesizeformat(limit)}
        )
        if upload.size > limit:
            raise too_large
        name = os.path.basename((upload.name or "").replace("\\", "/")).strip() or "file"
        extension = os.path.splitext(name)[1].lower()
        content_type = (upload.content_type or "").split(";")[0].strip().lower()
        content_type = CONTENT_TYPE_ALIASES.get((content_type, extension), content_type)
        if content_type not in settings.COMPANY_FILE_TYPES:
            raise forms.ValidationError(
                _("This kind of file cannot be accepted. Please send %(types)s.")
                % {"types": _file_type_names()}
            )
        if not name_fits_type(name, content_type):
            # A page saved as .html and sent as text/plain would open in a browser from the
            # student's disk: the name must say what the file is.
            raise forms.ValidationError(
                _("The file's name must end in %(extensions)s for this kind of file.")
                % {"extensions": ", ".join(EXTENSIONS.get(content_type, ()))}
            )
        upload.seek(0)
        content = upload.read(limit + 1)
        if len(content) > limit:
            raise too_large
        if looks_like_markup(content):
            # The student opens what a company sends: nothing in it may be a page that runs.
            raise forms.ValidationError(
                _(
                    "The file contains web-page code (HTML or SVG), which cannot be accepted. "
                    "Please send the data as %(types)s without it."
                )
                % {"types": _file_type_names()}
            )
        if not content_matches(content_type, content):
            raise forms.ValidationError(
                _("The file's content does not match its type (%(type)s). Please check the file.")
                % {"type": content_type}
            )
        return name[-200:], content_type, content

    def statement(self) -> str:
        if self.cleaned_data["answer"] == Answer.DISCLOSED:
            return self.cleaned_data["held_data"].strip()
        return super().statement()

    def file(self) -> tuple[str, str, bytes] | None:
        if self.cleaned_data.get("answer") == Answer.DISCLOSED:
            return self._file
        return None


class CorrectionAnswerForm(CompanyAnswerForm):
    kind = DataRequest.Kind.CORRECTION
    choices = [
        (Answer.CORRECTED, _("We have corrected the data as asked")),
        (Answer.HELD_NONE, _("We held none of this data")),
        (Answer.REFUSED, _("We cannot correct it")),
    ]
    hints = {
        Answer.CORRECTED: _(
            "In every copy, in every system and file, and in every score or other result "
            "made from it."
        ),
        Answer.HELD_NONE: _("We never had, or no longer have, any of the data concerned."),
        Answer.REFUSED: _(
            "For example, because you hold the data as it is said to be right. Tell us why; "
            "the student is told your reason."
        ),
    }
    fields_for = {Answer.REFUSED: ["reason"]}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = _("Why you cannot correct it")


FORMS = {
    DataRequest.Kind.DELETION: DeletionAnswerForm,
    DataRequest.Kind.CESSATION: CessationAnswerForm,
    DataRequest.Kind.DISCLOSURE: DisclosureAnswerForm,
    DataRequest.Kind.CORRECTION: CorrectionAnswerForm,
}


def answer_form_class(kind: str) -> type[CompanyAnswerForm]:
    return FORMS[kind]
