"""The register of models: a Privacy officer activates a draft, after which it is final."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inferences.models import ActiveModelImmutable, InferenceModel
from portal.models import User

# What the student is told about a model: each in both languages, never empty.
DESCRIBED = (
    "name",
    "predicts",
    "data_categories",
    "use",
    "never",
    "output_meaning",
)


def inference_model_activate(
    *, model: InferenceModel, by: User | None, at: datetime | None = None
) -> InferenceModel:
    """Make a draft active: from now on the pipeline may send its results, and it never
    changes again. Refused when the student could not be told what it is in both languages,
    when its purpose does not need per-employer consent, or its output's form is unclear.
    `at` is for importing history (the demo)."""
    with transaction.atomic():
        locked = (
            InferenceModel.objects.select_for_update(of=("self",))
            .select_related("purpose")
            .get(pk=model.pk)
        )
        if locked.is_active:
            raise ActiveModelImmutable(locked)
        errors: dict[str, str] = {}
        for field in DESCRIBED:
            for language in ("ja", "en"):
                if not getattr(locked, f"{field}_{language}").strip():
                    errors[f"{field}_{language}"] = _(
                        "A model is described to the student in Japanese and English."
                    )
        if not locked.accountable.strip():
            errors["accountable"] = _("Say who is accountable for the model.")
        if not locked.purpose.requires_opt_in:
            errors["purpose"] = _(
                "The purpose must need the student's consent per employer: a model's results "
                "are made only for an employer the student said yes to."
            )
        errors.update(locked.output_problems())
        if errors:
            raise ValidationError(errors)
        now = at or timezone.now()
        InferenceModel.objects.filter(pk=locked.pk, activated_at=None).update(
            activated_at=now, activated_by=by
        )
        locked.refresh_from_db()
    return locked
