"""The digests that tell a company what is new, due or overdue in one email."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.companies import RecipientTask


class CompanyDigest(models.Model):
    """One email to a company gathering what it is told: the new requests, the reminders due
    and the requests gone overdue since its last one (disclosure/services/digests.py).

    At most one per company and period (an hourly or daily digest; an API-only company's
    overdue notice has a period per sweep), and each task is in at most one digest for each
    reason (`DigestItem`): two sweeps at once, or one run again after a worker died, tell
    nothing twice."""

    employer = models.ForeignKey(
        "portal.Employer", on_delete=models.PROTECT, related_name="+", verbose_name=_("company")
    )
    period = models.CharField(_("period"), max_length=40)
    delivery = models.CharField(_("delivery"), max_length=8)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    email = models.ForeignKey(
        "portal.EmailMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("email"),
    )
    counts = models.JSONField(_("what it told"), default=dict, blank=True)

    class Meta:
        verbose_name = _("company digest")
        verbose_name_plural = _("company digests")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["employer", "period"], name="one_digest_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.employer_id} · {self.period}"


class DigestItem(models.Model):
    class Reason(models.TextChoices):
        NEW = "new", _("new request")
        REMINDER_1 = "reminder_1", _("first reminder")
        REMINDER_2 = "reminder_2", _("second reminder")
        OVERDUE = "overdue", _("overdue")

    digest = models.ForeignKey(
        CompanyDigest, on_delete=models.CASCADE, related_name="items", verbose_name=_("digest")
    )
    task = models.ForeignKey(
        RecipientTask,
        on_delete=models.CASCADE,
        related_name="digest_items",
        verbose_name=_("company task"),
    )
    reason = models.CharField(_("reason"), max_length=12, choices=Reason.choices)

    class Meta:
        verbose_name = _("digest item")
        verbose_name_plural = _("digest items")
        constraints = [
            models.UniqueConstraint(fields=["task", "reason"], name="one_digest_item_per_reason")
        ]

    def __str__(self) -> str:
        return f"{self.digest_id} · {self.task_id} · {self.reason}"
