"""Data-rights requests (disclosure, deletion, cessation), one tracked task per company.

Imports `consent` and the core models, never the other way round (DESIGN.md, "Layout").
"""

import hashlib
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import Language
from portal.shared.fields import SealedCharField


class DataRequest(models.Model):
    class Kind(models.TextChoices):
        DISCLOSURE = "disclosure", _("disclosure")
        DELETION = "deletion", _("deletion")
        CESSATION = "cessation", _("cessation of use and provision")

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


# What a company confirms when it answers "deleted" or "stopped" (the answer form's tick
# box). The words it confirmed are stored in its language as the evidence; each reader is
# shown them in their own (RecipientTask.reader_statement).
DELETION_ATTESTATION = _(
    "I confirm that every copy of this student's data and every score or other result "
    "derived from it has been deleted, and that none of it will be used in any hiring "
    "decision."
)
CESSATION_ATTESTATION = _(
    "I confirm that we have stopped using this student's data, will not pass it on, and "
    "will not use it or any score derived from it in any hiring decision."
)


def reader_statement(*, answer: str, statement: str) -> str:
    """A company's statement in the active language: an attestation it ticked ("deleted",
    "stopped") in the reader's words, the exact words it confirmed staying the evidence;
    anything it wrote itself (a reason, the data it holds) as it wrote it."""
    if statement and answer == "deleted":
        return str(DELETION_ATTESTATION)
    if statement and answer == "stopped":
        return str(CESSATION_ATTESTATION)
    return statement


class RecipientTask(models.Model):
    """The request as passed on to one company, tracked until it answers."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent, waiting for the answer")
        ANSWERED = "answered", _("answered")
        CLOSED = "closed", _("closed by staff")

    class Answer(models.TextChoices):
        DELETED = "deleted", _("deleted")
        STOPPED = "stopped", _("stopped using it")
        HELD_NONE = "held_none", _("held none of this data")
        REFUSED = "refused", _("cannot comply")
        DISCLOSED = "disclosed", _("disclosed what it holds")

    class Via(models.TextChoices):
        LINK = "link", _("the answer link")
        WORKSPACE = "workspace", _("the company's workspace")
        STAFF = "staff", _("support staff, received another way")
        API = "api", _("the company's API key")

    request = models.ForeignKey(
        DataRequest, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("request")
    )
    employer = models.ForeignKey(
        "portal.Employer", on_delete=models.PROTECT, related_name="+", verbose_name=_("company")
    )
    reasons = models.JSONField(_("why this company"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # When its next step (the request, a reminder) was last queued (portal/shared/queueing.py).
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    email = models.ForeignKey(
        "portal.EmailMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("latest email"),
    )
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    last_reminder_at = models.DateTimeField(_("last reminder"), null=True, blank=True)
    overdue = models.BooleanField(_("overdue"), default=False)
    escalated_at = models.DateTimeField(_("escalated to staff"), null=True, blank=True)
    answer = models.CharField(_("answer"), max_length=10, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    answered_by = models.CharField(_("answered by"), max_length=200, blank=True)
    statement = models.TextField(_("statement"), blank=True)
    answered_via = models.CharField(
        _("answered via"), max_length=10, choices=Via.choices, blank=True
    )
    evidence = models.TextField(_("evidence"), blank=True)
    # The key an answer came with (answered_via "api"); its name is also on the timeline.
    answered_client = models.ForeignKey(
        "consent.ApiClient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered with the API key"),
    )
    # When anything the company's API list shows last changed (sent, reminded, answered,
    # closed, resent, the due date): the list's order and cursor (GET /api/v1/requests).
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)

    class Meta:
        verbose_name = _("company task")
        verbose_name_plural = _("company tasks")
        ordering = ["request", "employer__name"]
        constraints = [
            models.UniqueConstraint(fields=["request", "employer"], name="one_task_per_company")
        ]
        indexes = [
            models.Index(fields=["status", "sent_at"]),
            models.Index(fields=["employer", "changed_at", "id"], name="task_employer_changed"),
            # The company's workspace: its tasks, newest first (issue 19).
            models.Index(fields=["employer", "-created_at", "-id"], name="task_workspace"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} → {self.employer_id}"

    @property
    def failed(self) -> bool:
        """The email to the company could not be delivered after every retry."""
        return (
            self.status == self.Status.SENT
            and self.email is not None
            and (self.email.status == "failed")
        )

    @property
    def is_done(self) -> bool:
        return self.status in (self.Status.ANSWERED, self.Status.CLOSED)

    @property
    def attested(self) -> bool:
        """The statement is the attestation the company ticked (in its own language)."""
        return bool(self.statement) and self.answer in (self.Answer.DELETED, self.Answer.STOPPED)

    @property
    def reader_statement(self) -> str:
        return reader_statement(answer=self.answer or "", statement=self.statement)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AnswerLink(models.Model):
    """A link a company answers by. Only the SHA-256 of its token is stored; the token is in
    the email. A reminder adds a link; staff resending revokes the earlier ones."""

    task = models.ForeignKey(
        RecipientTask, on_delete=models.CASCADE, related_name="links", verbose_name=_("task")
    )
    token_sha256 = models.CharField(_("SHA-256 of the token"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("answer link")
        verbose_name_plural = _("answer links")

    def __str__(self) -> str:
        return f"{self.task_id} · {self.token_sha256[:8]}…"


class WorkspaceLink(models.Model):
    """A link that opens one company's workspace (every task passed to it) for a few days.

    Sent to one of the company's privacy contacts when they ask for it. Only the SHA-256 of
    its token is stored; the token is in the email. Staff can revoke it."""

    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.CASCADE,
        related_name="workspace_links",
        verbose_name=_("company"),
    )
    contact = models.ForeignKey(
        "portal.PrivacyContact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("privacy contact"),
    )
    email = models.EmailField(_("sent to"))
    token_sha256 = models.CharField(_("SHA-256 of the token"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("workspace link")
        verbose_name_plural = _("workspace links")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["employer", "-created_at"], name="workspacelink_employer")]

    def __str__(self) -> str:
        return f"{self.employer_id} · {self.email} · {self.token_sha256[:8]}…"

    def works(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now


class WorkspaceEvent(models.Model):
    """What was done with a workspace link: each sign-in and each answer given in it, for
    staff to read under the company. Append-only."""

    class Kind(models.TextChoices):
        SENT = "sent", _("link sent")
        SIGNED_IN = "signed_in", _("signed in")
        ANSWERED = "answered", _("answered tasks")
        REVOKED = "revoked", _("link revoked by staff")
        DELIVERY = "delivery", _("changed how requests are delivered")

    link = models.ForeignKey(
        WorkspaceLink, on_delete=models.CASCADE, related_name="events", verbose_name=_("link")
    )
    employer = models.ForeignKey(
        "portal.Employer", on_delete=models.CASCADE, related_name="+", verbose_name=_("company")
    )
    kind = models.CharField(_("what happened"), max_length=12, choices=Kind.choices)
    at = models.DateTimeField(_("time"), default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    tasks = models.ManyToManyField(
        RecipientTask, blank=True, related_name="workspace_events", verbose_name=_("tasks")
    )
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("workspace event")
        verbose_name_plural = _("workspace events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.link_id} · {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Workspace events are a ledger: they are never changed."))
        super().save(*args, **kwargs)


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
