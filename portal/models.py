"""The core records every other app builds on: people, client companies, behaviour data.

This module imports no other app of the project (see DESIGN.md, "Layout").
"""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

# The session key of a language chosen before signing in (the switcher on the sign-in page):
# the sign-in keeps that choice instead of the account's (portal/adapters.py).
LANGUAGE_CHOSEN_SIGNED_OUT = "portal_language_chosen_signed_out"


class Language(models.TextChoices):
    JA = "ja", _("Japanese")
    EN = "en", _("English")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str) -> "User":
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A student of the job site, or (with is_staff) a support agent.

    `public_id` is the stable pseudonymous id that the API and receipts use instead of the
    email address, so nothing downstream needs to hold a student's contact details.
    """

    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=100)
    public_id = models.UUIDField(
        _("pseudonymous id"), default=uuid.uuid4, unique=True, editable=False
    )
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.JA
    )
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("Support staff work in the admin site; students never have this."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # When the student closed the account (disclosure/closing.py): the name, the address
    # and every way in went then; what the law keeps stays, until the retention job.
    closed_at = models.DateTimeField(_("account closed"), null=True, blank=True)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        # Held by the Privacy officer role only (backoffice/roles.py).
        permissions = [("reset_second_factor", _("Can reset a staff member's second factor"))]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name


def corporate_number_check_digit(base12: str) -> int:
    """The check digit of a Japanese corporate number (法人番号) for its last 12 digits.

    National Tax Agency rule: 9 - (sum of P_n * Q_n mod 9), where P_n is the n-th digit
    counted from the right and Q_n is 1 for odd n and 2 for even n.
    """
    total = sum(
        int(digit) * (2 if n % 2 == 0 else 1) for n, digit in enumerate(reversed(base12), 1)
    )
    return 9 - total % 9


def validate_corporate_number(value: str) -> None:
    if not (len(value) == 13 and value.isascii() and value.isdigit()):
        raise ValidationError(
            _("A corporate number is 13 digits (法人番号), e.g. 7000012050002."), code="format"
        )
    if int(value[0]) != corporate_number_check_digit(value[1:]):
        raise ValidationError(
            _("This is not a valid corporate number: its check digit (the first) does not match."),
            code="check_digit",
        )


class Employer(models.Model):
    """A client company of the job site: a possible recipient of a student's data."""

    class Delivery(models.TextChoices):
        """How the company is told of the requests passed to it (disclosure/services/digests.py)."""

        EACH = "each", _("each request by its own email")
        HOURLY = "hourly", _("an hourly digest")
        DAILY = "daily", _("a daily digest at 09:00 Japan time")
        API = "api", _("API or webhook only (an email only when a request goes overdue)")

    name = models.CharField(_("name (Japanese)"), max_length=200)
    corporate_number = models.CharField(
        _("corporate number"),
        max_length=13,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_corporate_number],
        help_text=_("The 13-digit number the National Tax Agency gives every company."),
    )
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    # Inactive: the company no longer takes part, so no student can grant it anything new.
    # It is still written to about data it already received (requests, stop-use notices):
    # leaving the job site does not end its duties for what it holds.
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_(
            "An inactive company can no longer receive consents. It is still sent requests "
            "and notices about the data it already received."
        ),
    )
    request_delivery = models.CharField(
        _("how requests are delivered"),
        max_length=8,
        choices=Delivery.choices,
        default=Delivery.EACH,
        help_text=_(
            "A digest is one email per period listing every new request, reminder and overdue "
            "request, with one link to the company's workspace. The company's contacts can "
            "change this in their workspace."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("employer")
        verbose_name_plural = _("employers")
        ordering = ["name"]
        indexes = [models.Index(fields=["name"], name="employer_name")]  # 30,000, in this order

    def __str__(self) -> str:
        return self.name

    def display_name(self, language: str) -> str:
        return self.name_en if language == Language.EN and self.name_en else self.name

    @cached_property
    def contact_list(self) -> list["PrivacyContact"]:
        """The contacts, primary first: one query, or none after prefetch_related("contacts")."""
        return list(self.contacts.all())

    @property
    def primary_contact(self) -> "PrivacyContact | None":
        """Whom messages to the company are addressed to; None if nobody is."""
        return next((c for c in self.contact_list if c.is_primary), None)

    @property
    def message_language(self) -> str:
        """The language messages to the company are written in: its primary contact's, else
        the site's."""
        contact = self.primary_contact
        return contact.language if contact else settings.LANGUAGE_CODE

    @property
    def cc_emails(self) -> list[str]:
        """The other contacts, copied on every message to the company."""
        return [c.email for c in self.contact_list if not c.is_primary]


class PrivacyContact(models.Model):
    """Someone at a company who receives the portal's requests and notices about students."""

    employer = models.ForeignKey(
        Employer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("employer")
    )
    name = models.CharField(_("name or role"), max_length=200)
    email = models.EmailField(_("email"))
    language = models.CharField(
        _("language for messages"), max_length=8, choices=Language.choices, default=Language.JA
    )
    is_primary = models.BooleanField(
        _("primary"), default=False, help_text=_("Requests are addressed to the primary contact.")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("privacy contact")
        verbose_name_plural = _("privacy contacts")
        ordering = ["employer", "-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["employer", "email"], name="one_contact_per_email"),
            models.UniqueConstraint(
                fields=["employer"],
                condition=models.Q(is_primary=True),
                name="one_primary_contact",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class ActivityRecord(models.Model):
    """One piece of behaviour data the job site collected about a student."""

    class Kind(models.TextChoices):
        PAGE_VIEW = "page_view", _("page view")
        SEARCH = "search", _("search")
        JOB_VIEW = "job_view", _("job listing viewed")
        BOOKMARK = "bookmark", _("job bookmarked")
        APPLICATION = "application", _("application")
        SEMINAR = "seminar", _("seminar registration")

    student = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="activity_records", verbose_name=_("student")
    )
    employer = models.ForeignKey(
        Employer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activity_records",
        verbose_name=_("employer"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    # Who sent it through the API (`POST /api/v1/activity`) and under which id of theirs;
    # both empty for rows the portal made itself (the demo data). A string reference, not an
    # import: the API key is the sender, and the pair makes a retried batch harmless.
    sender = models.ForeignKey(
        "consent.ApiClient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activity_records",
        verbose_name=_("sent by"),
    )
    source_record_id = models.CharField(
        _("sender's record id"), max_length=100, null=True, blank=True
    )
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)

    class Meta:
        verbose_name = _("activity record")
        verbose_name_plural = _("activity records")
        indexes = [
            models.Index(fields=["student", "-occurred_at"]),
            models.Index(fields=["occurred_at"], name="activity_occurred"),  # the date drill-down
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "source_record_id"], name="one_activity_record_per_sender_id"
            ),
            models.CheckConstraint(
                condition=models.Q(sender__isnull=True, source_record_id__isnull=True)
                | models.Q(sender__isnull=False, source_record_id__isnull=False),
                name="activity_sender_and_id_together",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d}"


class EmailMessage(models.Model):
    """An outgoing email, stored before it is sent.

    The row is the truth: a Celery task claims it by id and sends it, a sweeper re-queues
    rows that are due and unsent, and staff can see what failed and why.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    # Blank only for a message that could not be addressed (a company with no primary
    # contact): stored as failed, with the reason, so staff see it with the other failures.
    to = models.EmailField(_("to"), blank=True)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    subject = models.CharField(_("subject"), max_length=300)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    # The secrets the bodies hold only as placeholders (answer links, reset keys, codes),
    # sealed until the message is sent and erased then (portal/shared/sealing.py). Never shown.
    sealed_secrets = models.TextField(blank=True, default="", editable=False)
    kind = models.CharField(_("kind"), max_length=80)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    # To an account closed before it went (disclosure/closing.py): its address and bodies
    # are erased once it is sent or has failed (backoffice.retention).
    erase_when_done = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    # When a task to send it was last put in the queue (portal/shared/queueing.py); NULL: none is.
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["kind", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to}"

    @property
    def failed(self) -> bool:
        return self.status == self.Status.FAILED
