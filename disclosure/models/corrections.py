"""What a correction request asks to correct (APPI Art. 34; GDPR Art. 16 and 19): the data
the student says is wrong, in their words, what is right, and what the portal did with its
own part."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.requests import DataRequest


class Correction(models.Model):
    """One per correction request, written when it is filed and never changed after: the
    request's timeline says what happened next."""

    class Target(models.TextChoices):
        PROFILE = "profile", _("a detail of my profile on this portal")
        ACTIVITY = "activity", _("one of my activity records")
        INFERENCE = "inference", _("a result the site inferred about me")
        COMPANY = "company", _("data a company holds about me")

    class ProfileField(models.TextChoices):
        # The profile details the portal holds and corrects itself. The email address is
        # not one: a new address is confirmed by a link sent to it (the account page).
        DISPLAY_NAME = "display_name", _("my name")

    class Outcome(models.TextChoices):
        """The portal's own part."""

        CORRECTED = "corrected", _("corrected by the portal at once")
        DISPUTED = "disputed", _("marked disputed")
        PASSED_ON = "passed_on", _("held by the companies only: passed on to them")

    request = models.OneToOneField(
        DataRequest,
        on_delete=models.CASCADE,
        related_name="correction",
        verbose_name=_("request"),
    )
    target = models.CharField(_("what is to be corrected"), max_length=10, choices=Target.choices)
    profile_field = models.CharField(
        _("profile detail"), max_length=20, choices=ProfileField.choices, blank=True
    )
    # The record or result corrected. Kept as words too (`target_label`): a deletion may
    # erase the record later, and the request still says what it was about.
    activity = models.ForeignKey(
        "portal.ActivityRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activity record"),
    )
    inference = models.ForeignKey(
        "inferences.Inference",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("inference"),
    )
    # An inference's correction is also a dispute in staff's queue (docs/inferences.md).
    dispute = models.OneToOneField(
        "inferences.InferenceDispute",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="correction",
        verbose_name=_("dispute"),
    )
    target_label = models.CharField(_("the data, as it was"), max_length=300, blank=True)
    wrong = models.TextField(_("what is wrong, in the student's words"))
    right = models.TextField(_("what is right, in the student's words"), blank=True)
    outcome = models.CharField(_("the portal's own part"), max_length=10, choices=Outcome.choices)
    previous_value = models.CharField(_("value before the correction"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("filed"), default=timezone.now)

    class Meta:
        verbose_name = _("correction asked")
        verbose_name_plural = _("corrections asked")

    def __str__(self) -> str:
        return f"{self.request_id} · {self.target}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("A correction asked is kept as filed: it is never changed."))
        super().save(*args, **kwargs)
