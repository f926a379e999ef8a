"""What the site infers about students (issue 21): the register of models it runs, each
inference one of them made about one student for one employer, and the student's objections
to a model and disputes of one result.

A model is registered and activated by a Privacy officer before anything it makes is
accepted; once active it never changes (a new version is registered instead), as a
published policy version never does. Inferences, objections and the notices they send are
ledgers: inserted, never updated.
"""

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import localized
from portal.models import Language

# A version label the API and the admin agree on: letters, digits and . _ -
VERSION_PATTERN = r"[-A-Za-z0-9_.]{1,40}"
MAX_LABEL = 100


class ActiveModelImmutable(ValidationError):
    """An active model was about to change. Register a new version instead."""

    def __init__(self, model: "InferenceModel | None" = None):
        super().__init__(
            _("Model %(name)s is active and can never change. Register a new version instead."),
            code="active_immutable",
            params={"name": str(model) if model is not None else ""},
        )


class InferenceModelQuerySet(models.QuerySet):
    def active(self) -> "InferenceModelQuerySet":
        return self.filter(activated_at__isnull=False)


class InferenceModel(models.Model):
    """One version of something the site computes about students, described for them."""

    class Output(models.TextChoices):
        LABEL = "label", _("one label of a fixed set")
        NUMBER = "number", _("a number in a fixed range")

    code = models.SlugField(
        _("code"),
        max_length=60,
        help_text=_(
            "The same for every version of the model, e.g. decline_likelihood. A student's "
            "objection covers every version."
        ),
    )
    version = models.CharField(
        _("version"),
        max_length=40,
        validators=[RegexValidator(f"^{VERSION_PATTERN}$")],
        help_text=_("e.g. 1.0 (letters, digits, dots, hyphens and underscores)."),
    )
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    predicts_ja = models.TextField(
        _("what it predicts (Japanese)"), help_text=_("In plain words, for the student.")
    )
    predicts_en = models.TextField(_("what it predicts (English)"))
    data_categories_ja = models.CharField(
        _("data it reads (Japanese)"),
        max_length=300,
        help_text=_("The kinds of data it is computed from, e.g. pages viewed, searches."),
    )
    data_categories_en = models.CharField(_("data it reads (English)"), max_length=300)
    purpose = models.ForeignKey(
        "consent.Purpose",
        on_delete=models.PROTECT,
        related_name="inference_models",
        limit_choices_to={"requires_opt_in": True},
        verbose_name=_("purpose"),
        help_text=_(
            "A purpose that needs the student's consent per employer: an inference for an "
            "employer is refused without a live grant of it."
        ),
    )
    use_ja = models.TextField(
        _("how its output may be used (Japanese)"),
        help_text=_("What the employer may do with a result."),
    )
    use_en = models.TextField(_("how its output may be used (English)"))
    never_ja = models.TextField(
        _("how its output must never be used (Japanese)"),
        help_text=_("e.g. never in a pass/fail decision."),
    )
    never_en = models.TextField(_("how its output must never be used (English)"))
    output_kind = models.CharField(_("output"), max_length=10, choices=Output.choices)
    labels = models.TextField(
        _("labels"),
        blank=True,
        help_text=_("For a label output: one label per line, as the pipeline sends them."),
    )
    number_min = models.FloatField(_("lowest number"), null=True, blank=True)
    number_max = models.FloatField(_("highest number"), null=True, blank=True)
    output_meaning_ja = models.TextField(
        _("what the output means (Japanese)"),
        help_text=_("e.g. what each label stands for, or what a high number says."),
    )
    output_meaning_en = models.TextField(_("what the output means (English)"))
    accountable = models.CharField(
        _("accountable person"),
        max_length=200,
        help_text=_("Who answers for the model: a name and a role."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    activated_at = models.DateTimeField(_("active from"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )

    objects = InferenceModelQuerySet.as_manager()

    class Meta:
        verbose_name = _("inference model")
        verbose_name_plural = _("inference models")
        ordering = ["code", "-created_at"]
        permissions = [("activate_inferencemodel", _("Can activate an inference model"))]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="one_model_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.version}"

    def save(self, *args, **kwargs):
        # As a published policy version: an active model is final, whoever calls. Activation
        # happens through inferences.services.inference_model_activate, by a conditional UPDATE.
        if self._stored_is_active():
            raise ActiveModelImmutable(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._stored_is_active():
            raise ActiveModelImmutable(self)
        return super().delete(*args, **kwargs)

    def clean(self):
        problems = self.output_problems()
        if problems:
            raise ValidationError(problems)

    def output_problems(self) -> dict[str, str]:
        """What is wrong with the output's form: labels for a label output, a range for a
        number (the form and the activation both ask)."""
        if self.output_kind == self.Output.LABEL:
            labels = self.label_set
            if not labels:
                return {"labels": _("A label output needs its labels, one per line.")}
            if any(len(label) > MAX_LABEL for label in labels):
                return {"labels": _("A label has at most 100 characters.")}
            if len(set(labels)) != len(labels):
                return {"labels": _("Each label appears once.")}
        elif self.output_kind == self.Output.NUMBER:
            low, high = self.number_min, self.number_max
            if low is None or high is None or not low < high:
                return {"number_max": _("A number output needs its lowest and highest number.")}
        return {}

    def _stored_is_active(self) -> bool:
        return (
            self.pk is not None
            and type(self).objects.filter(pk=self.pk, activated_at__isnull=False).exists()
        )

    @property
    def is_active(self) -> bool:
        return self.activated_at is not None

    @property
    def label_set(self) -> list[str]:
        return [line.strip() for line in self.labels.splitlines() if line.strip()]

    def output_fits(self, output: str | float) -> bool:
        """Whether a result has this model's output form."""
        if self.output_kind == self.Output.LABEL:
            return isinstance(output, str) and output in self.label_set
        return (
            isinstance(output, float)
            and math.isfinite(output)
            and self.number_min is not None
            and self.number_max is not None
            and self.number_min <= output <= self.number_max
        )

    def name(self, language: str) -> str:
        return localized(self, "name", language)

    def predicts(self, language: str) -> str:
        return localized(self, "predicts", language)

    def data_categories(self, language: str) -> str:
        return localized(self, "data_categories", language)

    def use(self, language: str) -> str:
        return localized(self, "use", language)

    def never(self, language: str) -> str:
        return localized(self, "never", language)

    def output_meaning(self, language: str) -> str:
        return localized(self, "output_meaning", language)


class Inference(models.Model):
    """One result a model produced about a student, for one employer. A ledger row: made
    only by `inferences_record`, which refuses it without a live grant, after an objection
    or under a deletion or cessation request; never changed."""

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="inferences",
        verbose_name=_("student"),
    )
    model = models.ForeignKey(
        InferenceModel,
        on_delete=models.PROTECT,
        related_name="inferences",
        verbose_name=_("model"),
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="inferences",
        verbose_name=_("made for"),
    )
    output_label = models.CharField(_("label"), max_length=MAX_LABEL, blank=True)
    output_number = models.FloatField(_("number"), null=True, blank=True)
    made_at = models.DateTimeField(_("made at"))
    input_from = models.DateTimeField(_("data from"))
    input_to = models.DateTimeField(_("data until"))
    handed_over_at = models.DateTimeField(_("handed over to the employer"), null=True, blank=True)
    # A result handed over is a provision of the student's data to the employer: its record
    # (APPI Art. 29), made with the result by the intake, relying on the student's grant of a
    # purpose that gives results to the employer. Kept when the result is erased (the record
    # names the model, never the output); the link goes when the record expires.
    provision = models.OneToOneField(
        "consent.Provision",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inference",
        verbose_name=_("record of provision"),
    )
    # Who sent it (`POST /api/v1/inferences`) and under which id of theirs: a retried batch
    # records nothing twice.
    sender = models.ForeignKey(
        "consent.ApiClient",
        on_delete=models.PROTECT,
        related_name="inferences",
        verbose_name=_("sent by"),
    )
    source_id = models.CharField(_("sender's id"), max_length=100)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    class Meta:
        verbose_name = _("inference")
        verbose_name_plural = _("inferences")
        ordering = ["-made_at", "-id"]
        indexes = [
            models.Index(fields=["student", "-made_at"]),
            models.Index(fields=["made_at", "id"], name="inference_made"),  # date drill-down
        ]
        constraints = [
            models.UniqueConstraint(fields=["sender", "source_id"], name="one_inference_per_id"),
            models.CheckConstraint(
                condition=models.Q(output_number__isnull=True, output_label__gt="")
                | models.Q(output_number__isnull=False, output_label=""),
                name="inference_one_output",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} · {self.output} · {self.made_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Inferences are a ledger: they are never changed."))
        super().save(*args, **kwargs)

    @property
    def output(self) -> str:
        if self.output_number is None:
            return self.output_label
        return f"{self.output_number:g}"

    @property
    def handed_over(self) -> bool:
        return self.handed_over_at is not None


class InferenceObjection(models.Model):
    """A student objected to a model: it makes nothing more about them, whatever the
    version, and the employers that were handed its results were told to stop using them."""

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="inference_objections",
        verbose_name=_("student"),
    )
    model_code = models.SlugField(_("model code"), max_length=60)
    model = models.ForeignKey(
        InferenceModel,
        on_delete=models.PROTECT,
        related_name="objections",
        verbose_name=_("model version shown"),
    )
    objected_at = models.DateTimeField(_("objected at"), default=timezone.now)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True)

    class Meta:
        verbose_name = _("objection to a model")
        verbose_name_plural = _("objections to models")
        ordering = ["-objected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "model_code"], name="one_objection_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} · {self.model_code}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Objections are a ledger: they are never changed."))
        super().save(*args, **kwargs)


class ObjectionNotice(models.Model):
    """An email telling an employer that was handed a model's results about a student to
    stop using them, after the student objected (as a StopUseNotice after a withdrawal).
    Its delivery state is the email's."""

    objection = models.ForeignKey(
        InferenceObjection,
        on_delete=models.CASCADE,
        related_name="notices",
        verbose_name=_("objection"),
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="objection_notices",
        verbose_name=_("employer"),
    )
    email = models.OneToOneField(
        "portal.EmailMessage",
        on_delete=models.PROTECT,
        related_name="objection_notice",
        verbose_name=_("email"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("objection notice")
        verbose_name_plural = _("objection notices")

    def __str__(self) -> str:
        return f"{self.employer_id} · {self.objection_id}"


class InferenceDispute(models.Model):
    """A student says one result is wrong; staff answer with a reason. The result shows
    "disputed" wherever it appears from then on."""

    class Outcome(models.TextChoices):
        UPHELD = "upheld", _("upheld: the result is wrong")
        NOT_UPHELD = "not_upheld", _("not upheld: the result stands")

    inference = models.ForeignKey(
        Inference, on_delete=models.CASCADE, related_name="disputes", verbose_name=_("inference")
    )
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="inference_disputes",
        verbose_name=_("student"),
    )
    statement = models.TextField(_("what the student says is wrong"))
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    filed_at = models.DateTimeField(_("filed at"), default=timezone.now)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices, blank=True)
    answer = models.TextField(_("answer"), blank=True)

    class Meta:
        verbose_name = _("dispute of an inference")
        verbose_name_plural = _("disputes of inferences")
        ordering = ["-filed_at", "-id"]
        permissions = [("answer_inferencedispute", _("Can answer a dispute of an inference"))]
        indexes = [models.Index(fields=["answered_at", "filed_at"], name="dispute_queue")]
        constraints = [
            models.UniqueConstraint(
                fields=["inference"],
                condition=models.Q(answered_at__isnull=True),
                name="one_open_dispute_per_inference",
            )
        ]

    def __str__(self) -> str:
        return f"{self.inference_id} · {self.filed_at:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.answered_at is None
