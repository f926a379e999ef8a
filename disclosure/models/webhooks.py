"""A company's webhook and each task POSTed to it (docs/api.md, "Webhooks")."""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.companies import RecipientTask
from disclosure.models.sources import _source_secret, validate_source_endpoint
from portal.shared.fields import SealedCharField


class Webhook(models.Model):
    """A company's HTTPS endpoint to which each task passed on to it is POSTed, signed like
    the data-source calls (disclosure/signing.py), besides its email (docs/api.md, "Webhooks").

    The secret signs the POST, so the portal must read it: the row holds it sealed. It is
    generated here, never typed, and shown once, to the staff member who registers the
    webhook or makes a new secret for it. One active webhook per company."""

    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="webhooks",
        verbose_name=_("company"),
    )
    endpoint = models.URLField(_("endpoint"), max_length=500, validators=[validate_source_endpoint])
    secret = SealedCharField(
        _("signing secret"), purpose="webhooks", default=_source_secret, editable=False
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["employer__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["employer"],
                condition=models.Q(active=True),
                name="one_active_webhook_per_employer",
                violation_error_message=_("This company already has an active webhook."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.employer} → {self.endpoint}"


class WebhookDelivery(models.Model):
    """One company task POSTed to its company's webhook: once per (webhook, task), tried
    again on timeouts and 5xx answers, then failed for staff to see and deliver again."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("being sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("webhook")
    )
    task = models.ForeignKey(
        RecipientTask,
        on_delete=models.CASCADE,
        related_name="webhook_deliveries",
        verbose_name=_("company task"),
    )
    # Sent as X-Portal-Event-Id and in the signed body: a receiver drops an event it has seen.
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # When a message for its next attempt was put in the queue (portal/shared/queueing.py).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "task"], name="one_delivery_per_task")
        ]
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self) -> str:
        return f"{self.task_id} → {self.webhook_id} ({self.status})"
