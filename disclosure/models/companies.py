"""The request as passed on to each company: its task, the answer it gave, and the links
it answers by."""

import hashlib

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.requests import DataRequest

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
        CORRECTED = "corrected", _("corrected the data")

    class Via(models.TextChoices):
        LINK = "link", _("the answer link")
        WORKSPACE = "workspace", _("the company's workspace")
        STAFF = "staff", _("support staff, received another way")
        API = "api", _("the company's API key")

    # No index of their own: one_task_per_company (request, employer) and the two employer
    # indexes below lead with them; each index more is written for every company of a filing.
    request = models.ForeignKey(
        DataRequest,
        on_delete=models.CASCADE,
        related_name="tasks",
        verbose_name=_("request"),
        db_index=False,
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("company"),
        db_index=False,
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
    the email. A reminder's new link, and staff resending, revoke the earlier ones."""

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
