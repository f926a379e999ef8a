"""What a request produced and what happened to it: its files and its timeline."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.companies import RecipientTask
from disclosure.models.requests import DataRequest


class RequestFile(models.Model):
    """A file of a request, kept in the database so every web node and worker sees it."""

    class Kind(models.TextChoices):
        REPORT_PDF = "report_pdf", _("disclosure report (PDF)")
        REPORT_JSON = "report_json", _("disclosure report (JSON)")
        REPORT_CSV = "report_csv", _("disclosure report: every activity record (CSV)")
        CERTIFICATE_PDF = "certificate_pdf", _("completion certificate (PDF)")
        COMPANY_FILE = "company_file", _("file sent by a company")

    # The portal's own report of a disclosure: made together, replaced together.
    REPORT_KINDS = (Kind.REPORT_PDF, Kind.REPORT_JSON, Kind.REPORT_CSV)

    request = models.ForeignKey(
        DataRequest, on_delete=models.CASCADE, related_name="files", verbose_name=_("request")
    )
    task = models.ForeignKey(
        RecipientTask,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="files",
        verbose_name=_("company task"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    content = models.BinaryField(_("content"))
    size = models.PositiveIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("request file")
        verbose_name_plural = _("request files")
        indexes = [models.Index(fields=["request", "kind"])]

    def __str__(self) -> str:
        return self.name


class RequestEvent(models.Model):
    """The timeline the student and staff read. Append-only."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", _("request received")
        PORTAL_DONE = "portal_done", _("the portal did its own part")
        REPORT_READY = "report_ready", _("your report is ready")
        SENT = "sent", _("request sent to the company")
        SEND_FAILED = "send_failed", _("the email to the company failed")
        REMINDED = "reminded", _("reminder sent to the company")
        OVERDUE = "overdue", _("the company is overdue; support staff are following up")
        ANSWERED = "answered", _("the company answered")
        LINK_RESENT = "link_resent", _("a new link was sent to the company")
        EXTENDED = "extended", _("the due date was extended")
        CLOSED = "closed", _("staff closed the company's task")
        COMPLETED = "completed", _("request completed")
        CANCELLED = "cancelled", _("request cancelled")
        SOURCE_CALLED = "source_called", _("request passed to one of the site's own systems")
        SOURCE_RETRY = "source_retry", _("a system of the site did not answer; trying again")
        SOURCE_FAILED = "source_failed", _("a system of the site could not be reached")
        SOURCE_ANSWERED = "source_answered", _("a system of the site answered")
        SOURCE_OVERDUE = (
            "source_overdue",
            _("a system of the site is overdue; support staff are following up"),
        )

    class Actor(models.TextChoices):
        STUDENT = "student", _("you")
        COMPANY = "company", _("the company")
        STAFF = "staff", _("support staff")
        SYSTEM = "system", _("the portal")

    request = models.ForeignKey(
        DataRequest, on_delete=models.CASCADE, related_name="events", verbose_name=_("request")
    )
    task = models.ForeignKey(
        RecipientTask,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("company task"),
    )
    kind = models.CharField(_("what happened"), max_length=20, choices=Kind.choices)
    at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.CharField(_("by"), max_length=10, choices=Actor.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acting user"),
    )
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("request event")
        verbose_name_plural = _("request events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at", "id"], name="requestevent_at")]  # the admin's order

    def __str__(self) -> str:
        return f"{self.request_id} · {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Request events are a ledger: they are never changed."))
        super().save(*args, **kwargs)
