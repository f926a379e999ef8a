"""The request a student files (disclosure, deletion, cessation, correction): what, for
whom, when."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import Language


class DataRequest(models.Model):
    class Kind(models.TextChoices):
        DISCLOSURE = "disclosure", _("disclosure")
        DELETION = "deletion", _("deletion")
        CESSATION = "cessation", _("cessation of use and provision")
        CORRECTION = "correction", _("correction")

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("submitted")
        IN_PROGRESS = "in_progress", _("in progress")
        COMPLETED = "completed", _("completed")
        PARTIALLY_COMPLETED = "partially_completed", _("partially completed")
        CANCELLED = "cancelled", _("cancelled")

    OPEN = (Status.SUBMITTED, Status.IN_PROGRESS)

    class Format(models.TextChoices):
        PDF_JSON = "pdf_json", _("PDF and JSON")
        PDF = "pdf", _("PDF only")
        JSON = "json", _("JSON only")

    reference = models.CharField(_("reference"), max_length=20, unique=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="data_requests",
        verbose_name=_("student"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    all_recipients = models.BooleanField(_("every recipient"), default=True)
    employers = models.ManyToManyField(
        "portal.Employer", blank=True, related_name="+", verbose_name=_("chosen companies")
    )
    delivery_format = models.CharField(
        _("delivery format"), max_length=10, choices=Format.choices, default=Format.PDF_JSON
    )
    message = models.TextField(_("message from the student"), blank=True)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.SUBMITTED
    )
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now)
    due_at = models.DateTimeField(_("due"))
    extension_reason = models.TextField(_("reason for the extension"), blank=True)
    portal_done_at = models.DateTimeField(_("portal's own part done"), null=True, blank=True)
    portal_summary = models.JSONField(_("what the portal did"), default=dict, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancel_reason = models.TextField(_("reason for cancelling"), blank=True)
    # When the report or the certificate was last queued to be built (portal/shared/queueing.py).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)

    class Meta:
        verbose_name = _("data-rights request")
        verbose_name_plural = _("data-rights requests")
        ordering = ["-submitted_at"]
        # The staff actions on a request, each granted to a role (backoffice/roles.py).
        permissions = [
            ("resend_answer_link", _("Can resend a company's answer link")),
            ("record_answer", _("Can record a company's answer received another way")),
            ("extend_due_date", _("Can extend a request's due date")),
            ("close_task", _("Can close a company's task")),
            ("cancel_request", _("Can cancel a request")),
        ]
        indexes = [
            models.Index(fields=["student", "-submitted_at"]),
            models.Index(fields=["status", "due_at"]),
            # The admin's order (newest first) and its date drill-down, on 100,000 requests.
            models.Index(fields=["submitted_at", "id"], name="request_submitted"),
            # The list filtered by status (the dashboard's figures link there): its page and
            # the date drill-down's first and last date. Without it, MIN(submitted_at) of the
            # requests in progress walked every older request first (130 ms, 500 ms loaded).
            models.Index(fields=["status", "submitted_at", "id"], name="request_status_submitted"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN
