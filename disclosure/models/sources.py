"""The job site's own systems that take part in every request (docs/data-sources.md)."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.requests import DataRequest
from portal.shared.fields import SealedCharField


def _source_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def validate_source_endpoint(value: str) -> None:
    """HTTPS, except plain HTTP on loopback (the reference source in tests and the demo)."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return
    raise ValidationError(
        _("The endpoint must be an https:// URL (plain http only on 127.0.0.1 or localhost).")
    )


class DataSource(models.Model):
    """One of the job site's own systems that holds student data and must take part in
    every request. The portal calls its endpoint; it answers to a signed callback.

    The secret signs both ways (HMAC-SHA256), so the portal must be able to read it; the row
    holds it sealed (SealedCharField). It is generated here and shown once, to the superuser
    who makes the source or a new secret for it."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    holds = models.TextField(_("what it holds"))
    endpoint = models.URLField(_("endpoint"), max_length=500, validators=[validate_source_endpoint])
    secret = SealedCharField(
        _("signing secret"), purpose="data sources", default=_source_secret, editable=False
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("data source")
        verbose_name_plural = _("data sources")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceTask(models.Model):
    """The request as passed on to one of the site's own systems, tracked until it answers."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        CALLED = "called", _("called, waiting for the answer")
        ANSWERED = "answered", _("answered")
        FAILED = "failed", _("failed")
        CLOSED = "closed", _("closed")

    class Answer(models.TextChoices):
        CONFIRMED = "confirmed", _("confirmed")
        HELD_NONE = "held_none", _("held none of this data")
        DISCLOSED = "disclosed", _("disclosed what it holds")

    request = models.ForeignKey(
        DataRequest,
        on_delete=models.CASCADE,
        related_name="source_tasks",
        verbose_name=_("request"),
    )
    source = models.ForeignKey(
        DataSource, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("data source")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    # When the call was last queued (portal/shared/queueing.py).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    called_at = models.DateTimeField(_("called"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    overdue = models.BooleanField(_("overdue"), default=False)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    answer = models.CharField(_("answer"), max_length=10, choices=Answer.choices, blank=True)
    data = models.JSONField(_("data disclosed"), default=dict, blank=True)

    class Meta:
        verbose_name = _("data-source task")
        verbose_name_plural = _("data-source tasks")
        ordering = ["request", "source__name"]
        constraints = [
            models.UniqueConstraint(fields=["request", "source"], name="one_task_per_source")
        ]
        indexes = [models.Index(fields=["status", "called_at"])]

    def __str__(self) -> str:
        return f"{self.request_id} → {self.source_id}"

    @property
    def is_done(self) -> bool:
        return self.status in (self.Status.ANSWERED, self.Status.CLOSED)

    @property
    def may_be_called_again(self) -> bool:
        """A failed call; or a call that was never answered by the due date: the worker may
        have died between claiming it and the source receiving it, and no retry follows."""
        return self.status == self.Status.FAILED or (
            self.status == self.Status.CALLED and self.overdue
        )
