"""The staff audit log: append-only, each entry chained to the one before by SHA-256.

Who did what, when, to which object, what changed and why. Rows are only ever inserted
(`audit.log.audit_record`); on PostgreSQL a trigger refuses UPDATE and DELETE, and on
every database `manage.py verify_audit_log` recomputes the chain and names the first entry
that was edited, removed or inserted out of turn.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        LOGIN = "login", _("signed in to the admin")
        LOGIN_FAILED = "login_failed", _("failed admin sign-in")
        LOGOUT = "logout", _("signed out of the admin")
        ADD = "add", _("added")
        CHANGE = "change", _("changed")
        DELETE = "delete", _("deleted")
        ACTION = "action", _("staff action")
        SYSTEM = "system", _("system job")
        COMPANY = "company", _("company contact's action")

    # The chain's order. Not the primary key: ids come from a sequence that can skip, the
    # chain must not, so a missing number is a deleted entry.
    seq = models.PositiveBigIntegerField(_("number"), unique=True, editable=False)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    # No database constraint: deleting a staff account must neither be blocked by nor
    # rewrite the log; `actor_label` keeps who it was.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff member"),
    )
    actor_label = models.CharField(_("staff member (as recorded)"), max_length=254, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    name = models.CharField(
        _("what was done"),
        max_length=100,
        blank=True,
        help_text=_("For a staff action, its name, e.g. disclosure.extend_due_date."),
    )
    target_type = models.CharField(_("object type"), max_length=100, blank=True, db_index=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True)
    target_repr = models.CharField(_("object"), max_length=300, blank=True)
    changes = models.JSONField(_("what changed"), default=dict, blank=True)
    reason = models.TextField(_("reason given"), blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    prev_hash = models.CharField(_("previous entry's hash"), max_length=64)
    entry_hash = models.CharField(_("this entry's hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["actor", "-at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_repr}".strip()


class StaffRead(models.Model):
    """A staff member looked at a student's personal data (issue 17, item 2).

    Changes go to the audit log; reads come here, one row per page that showed a student's
    data: the student's page, their ledgers filtered to them, a request's page, an email's
    body. Append-only like the other ledgers. Not chained: a read is recorded on every page
    view and must not queue behind the audit chain's lock. The student sees the role, the
    date, what and why; the Privacy officer sees everything, per staff member.
    """

    class What(models.TextChoices):
        PROFILE = "profile", _("your account's page")
        LEDGER = "ledger", _("a list of your records")
        RECORD = "record", _("one of your records")
        REQUEST = "request", _("one of your requests")
        EMAIL = "email", _("an email sent to you")

    at = models.DateTimeField(_("when"), default=timezone.now)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("staff member"),
    )
    staff_label = models.CharField(_("staff member (as recorded)"), max_length=254)
    role = models.CharField(_("role"), max_length=100)
    # Kept when the student's account goes: the record of who looked is the portal's.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("student"),
    )
    what = models.CharField(_("what was seen"), max_length=10, choices=What.choices)
    # The kind of record ("consent.consentevent"), shown to the student in their language.
    record_type = models.CharField(_("record type"), max_length=100, blank=True)
    label = models.CharField(_("which"), max_length=300, blank=True)
    path = models.CharField(_("page"), max_length=500, blank=True)
    reason = models.CharField(_("reason given"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("staff look at a student's data")
        verbose_name_plural = _("staff looks at students' data")
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["student", "-at"]),
            models.Index(fields=["staff", "-at"]),
            models.Index(fields=["-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.staff_label} → {self.student_id} ({self.what})"

    @property
    def record_name(self) -> str:
        """The record type's name in the active language ("consent events")."""
        from django.apps import apps

        try:
            model = apps.get_model(self.record_type)
        except (LookupError, ValueError):
            return ""
        if self.what == self.What.LEDGER:
            return str(model._meta.verbose_name_plural)
        return str(model._meta.verbose_name)
