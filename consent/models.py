"""Privacy-policy versions, the purposes they disclose, and each student's acceptances."""

import hashlib
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import Language


class PublishedVersionImmutable(ValidationError):
    """A published policy version was about to change. Publish a new version instead."""

    def __init__(self, version: "PolicyVersion | None" = None):
        label = version.label if version is not None else ""
        super().__init__(
            _(
                "Policy version %(label)s is published and can never change. "
                "Create a new version instead."
            ),
            code="published_immutable",
            params={"label": label},
        )


def localized(obj, field: str, language: str) -> str:
    """obj.<field>_en in English when it is filled in, otherwise the Japanese original."""
    if language == Language.EN:
        english = getattr(obj, f"{field}_en", "")
        if english:
            return english
    return getattr(obj, f"{field}_ja")


class Purpose(models.Model):
    """One thing the site does with personal data, in plain words."""

    code = models.SlugField(_("code"), max_length=60, unique=True)
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description_ja = models.TextField(_("description (Japanese)"))
    description_en = models.TextField(_("description (English)"), blank=True)
    data_items_ja = models.CharField(_("data items (Japanese)"), max_length=300)
    data_items_en = models.CharField(_("data items (English)"), max_length=300, blank=True)
    category = models.CharField(
        _("purpose category"),
        max_length=100,
        help_text=_("The Kantara consent-receipt purpose category, e.g. 'Core Function'."),
    )
    requires_opt_in = models.BooleanField(
        _("needs separate per-employer consent"),
        default=False,
        help_text=_(
            "On for behaviour-data purposes: accepting the policy never grants them; the "
            "student decides per employer, and the default is off."
        ),
    )
    third_party_disclosure = models.BooleanField(_("data goes to third parties"), default=False)

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["requires_opt_in", "code"]
        permissions = [
            ("run_impact_report", _("Can run the impact report")),
            ("send_reconsent_mailing", _("Can email students asking them to review consent")),
        ]

    def __str__(self) -> str:
        return self.code

    def title(self, language: str) -> str:
        return localized(self, "title", language)

    def description(self, language: str) -> str:
        return localized(self, "description", language)

    def data_items(self, language: str) -> str:
        return localized(self, "data_items", language)


@dataclass(frozen=True)
class PolicyText:
    """The exact text of a version in one language, as a student is shown it."""

    language: str
    title: str
    body: str

    @property
    def canonical(self) -> str:
        return f"{self.title}\n\n{self.body}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()


def normalize_text(text: str) -> str:
    # Browsers submit CRLF; the hash must not depend on how the text was typed in.
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def purpose_wording_snapshot(purpose: "Purpose") -> dict:
    return {
        f"{field}_{lang}": getattr(purpose, f"{field}_{lang}")
        for field in ("title", "description", "data_items")
        for lang in ("ja", "en")
    }


EMPLOYER_PLACEHOLDERS = ("〈企業〉", "<employer>")


def fill_employer(wording: dict, employer, language: str) -> dict:
    """The purpose's wording with the placeholder for the company replaced by its name."""
    return fill_placeholder(wording, employer.display_name(language))


def fill_placeholder(wording: dict, name: str) -> dict:
    """The wording with the placeholder for the company replaced by `name`."""
    return {key: name_filled(value, name) for key, value in wording.items()}


def name_filled(text: str, name: str) -> str:
    """One text with the placeholder for the company replaced by `name`."""
    for placeholder in EMPLOYER_PLACEHOLDERS:
        text = text.replace(placeholder, name)
    return text


class PolicyVersionQuerySet(models.QuerySet):
    def published(self) -> "PolicyVersionQuerySet":
        return self.filter(published_at__isnull=False)

    def in_force(self, at=None) -> "PolicyVersionQuerySet":
        return self.published().filter(effective_at__lte=at or timezone.now())

    def current(self) -> "PolicyVersion | None":
        return self.in_force().order_by("-effective_at", "-published_at").first()


class PolicyVersion(models.Model):
    """One version of the privacy policy. A draft may change; a published one never does.

    The text is stored once per language, and the SHA-256 of each is fixed at publication,
    so every acceptance can prove which exact words the student saw.
    """

    label = models.CharField(_("label"), max_length=40, unique=True, help_text=_("e.g. 2019.03"))
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    body_ja = models.TextField(_("text (Japanese)"))
    body_en = models.TextField(_("text (English)"))
    summary_ja = models.TextField(
        _("what changed (Japanese)"), blank=True, help_text=_("Shown when asking to re-accept.")
    )
    summary_en = models.TextField(_("what changed (English)"), blank=True)
    purposes = models.ManyToManyField(
        Purpose, related_name="policy_versions", verbose_name=_("purposes disclosed")
    )
    material = models.BooleanField(
        _("material change"),
        default=False,
        help_text=_(
            "Students who have not accepted a material version are asked to on their next "
            "visit. Adding a purpose or a recipient is always material."
        ),
    )
    effective_at = models.DateTimeField(_("effective from"), default=timezone.now)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published by"),
    )
    text_sha256_ja = models.CharField(_("SHA-256 of the Japanese text"), max_length=64, blank=True)
    text_sha256_en = models.CharField(_("SHA-256 of the English text"), max_length=64, blank=True)
    purposes_wording = models.JSONField(
        _("wording of the purposes as published"),
        default=dict,
        blank=True,
        help_text=_("Fixed at publication, so a student is shown the words they accepted."),
    )

    objects = PolicyVersionQuerySet.as_manager()

    class Meta:
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        ordering = ["-effective_at", "-published_at"]
        permissions = [("publish_policyversion", _("Can publish a policy version"))]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs):
        # The one rule the model itself must hold, whoever calls it: published text is final.
        # Publication happens through consent.services.policy_publish, by a conditional UPDATE.
        if self._stored_is_published():
            raise PublishedVersionImmutable(self)
        for field in ("title_ja", "title_en", "body_ja", "body_en"):
            setattr(self, field, normalize_text(getattr(self, field)))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._stored_is_published():
            raise PublishedVersionImmutable(self)
        return super().delete(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def _stored_is_published(self) -> bool:
        return (
            self.pk is not None
            and type(self).objects.filter(pk=self.pk, published_at__isnull=False).exists()
        )

    def text(self, language: str) -> PolicyText:
        language = Language.EN if language == Language.EN else Language.JA
        return PolicyText(
            language=language,
            title=getattr(self, f"title_{language}"),
            body=getattr(self, f"body_{language}"),
        )

    def purpose_wording(self, purpose: "Purpose", language: str) -> dict:
        """A purpose's title, description and data items as this version published them."""
        stored = (self.purposes_wording or {}).get(purpose.code)
        source = stored if stored else purpose_wording_snapshot(purpose)
        suffix = "en" if language == Language.EN else "ja"
        return {
            field: source.get(f"{field}_{suffix}") or source.get(f"{field}_ja", "")
            for field in ("title", "description", "data_items")
        }

    def stored_sha256(self, language: str) -> str:
        return self.text_sha256_en if language == Language.EN else self.text_sha256_ja

    def title(self, language: str) -> str:
        return self.text(language).title

    def summary(self, language: str) -> str:
        return localized(self, "summary", language)


@receiver(m2m_changed, sender=PolicyVersion.purposes.through)
def _refuse_purpose_change_on_published_version(sender, instance, action, **kwargs):
    # A guard, not logic: the purposes a published version lists decide whether grants
    # are valid, so they are as final as its text.
    if action in ("pre_add", "pre_remove", "pre_clear") and isinstance(instance, PolicyVersion):
        if instance._stored_is_published():
            raise PublishedVersionImmutable(instance)


class Screen(models.TextChoices):
    """Where the student was when the text was shown to them (IAB TCF records the same)."""

    SIGNUP = "signup", _("sign-up")
    RECONSENT = "reconsent", _("re-acceptance after a change")
    REVIEW = "review", _("reviewed from the dashboard")
    APPLICATION = "application", _("job application")
    STAFF = "staff", _("recorded by staff")
    IMPORT = "import", _("imported from the job site")


class PolicyAcceptanceQuerySet(models.QuerySet):
    def latest_for(self, student, *, defer_texts: bool = False) -> "PolicyAcceptance | None":
        acceptances = self.filter(student=student).select_related("version")
        if defer_texts:
            acceptances = acceptances.defer("version__body_ja", "version__body_en")
        return acceptances.order_by("-version__effective_at", "-accepted_at").first()


def newest_acceptance_sql(*columns: str) -> str:
    """The student's newest acceptance as raw SQL, in latest_for's order: one row, or none,
    of `columns` (of the acceptance `a` and its version `v`). Its one parameter is the
    student's id. For the statements that join it to more (consent/services/policies.py,
    consent/views/consents.py), each where Django's building of the queries cost more
    than running them."""
    return f"""
  SELECT {", ".join(columns)}
  FROM {PolicyAcceptance._meta.db_table} a
  JOIN {PolicyVersion._meta.db_table} v ON v.id = a.version_id
  WHERE a.student_id = %s
  ORDER BY v.effective_at DESC, a.accepted_at DESC LIMIT 1
"""  # noqa: S608 - names from the models and the caller's column list; the id a parameter


class PolicyAcceptance(models.Model):
    """A student accepted a policy version. Append-only: never updated, never deleted."""

    receipt_id = models.UUIDField(_("receipt id"), default=uuid.uuid4, unique=True, editable=False)
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="policy_acceptances",
        verbose_name=_("student"),
    )
    version = models.ForeignKey(
        PolicyVersion,
        on_delete=models.PROTECT,
        related_name="acceptances",
        verbose_name=_("version"),
    )
    accepted_at = models.DateTimeField(_("accepted at"), default=timezone.now)
    screen = models.CharField(_("screen"), max_length=20, choices=Screen.choices)
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    text_sha256 = models.CharField(_("SHA-256 of the text shown"), max_length=64)
    collection_method = models.CharField(
        _("collection method"), max_length=100, default="web form: explicit accept button"
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True)

    objects = PolicyAcceptanceQuerySet.as_manager()

    class Meta:
        verbose_name = _("policy acceptance")
        verbose_name_plural = _("policy acceptances")
        ordering = ["-accepted_at"]
        indexes = [
            models.Index(fields=["student", "-accepted_at"]),
            # The admin's order (newest first) and its date drill-down.
            models.Index(fields=["accepted_at", "id"], name="acceptance_accepted"),
        ]
        constraints = [
            # A double click, or two tabs, must leave one acceptance per version.
            models.UniqueConstraint(
                fields=["student", "version"], name="one_acceptance_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} · {self.version_id} · {self.accepted_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("Acceptances are a ledger: they are never changed."))
        super().save(*args, **kwargs)

    def shown_text(self) -> PolicyText:
        return self.version.text(self.language)

    @property
    def text_matches(self) -> bool:
        """The stored text still hashes to what the student was shown."""
        return self.shown_text().sha256 == self.text_sha256


# --- Per-employer consent: the ledger, the current state, provisions, API clients ---------


class ConsentScreen(models.TextChoices):
    """Where a consent change happened."""

    CONSENT_PAGE = "consent_page", _("consent page")
    WITHDRAW_ALL = "withdraw_all", _("withdraw everything")
    POLICY_ACCEPTANCE = "policy_acceptance", _("accepting a policy version")
    DATA_REQUEST = "data_request", _("a data-rights request")
    STAFF = "staff", _("support staff, on the student's written instruction")


class ConsentEvent(models.Model):
    """One grant, withdrawal or lapse. Append-only: the ledger a student and staff read."""

    class Action(models.TextChoices):
        GRANT = "grant", _("granted")
        WITHDRAW = "withdraw", _("withdrawn")
        LAPSE = "lapse", _("lapsed (no longer in the policy you accepted)")

    class Actor(models.TextChoices):
        STUDENT = "student", _("the student")
        STAFF = "staff", _("support staff")
        SYSTEM = "system", _("the portal")

    receipt_id = models.UUIDField(_("receipt id"), default=uuid.uuid4, unique=True, editable=False)
    # No index of their own: the (student, employer, -occurred_at) and (employer, id) indexes
    # lead with them, and a filing writes 38 events at once.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="consent_events",
        verbose_name=_("student"),
        db_index=False,
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="consent_events",
        verbose_name=_("employer"),
        db_index=False,
    )
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="consent_events", verbose_name=_("purpose")
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    occurred_at = models.DateTimeField(_("time"), default=timezone.now)
    screen = models.CharField(_("screen"), max_length=20, choices=ConsentScreen.choices)
    policy_version = models.ForeignKey(
        PolicyVersion,
        on_delete=models.PROTECT,
        related_name="consent_events",
        verbose_name=_("policy version in force for the student"),
    )
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    actor = models.CharField(_("actor"), max_length=10, choices=Actor.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acting user"),
    )
    reason = models.TextField(_("reason"), blank=True)
    collection_method = models.CharField(_("collection method"), max_length=100, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["student", "employer", "-occurred_at"]),
            models.Index(fields=["employer", "id"]),
            # The admin's order (newest first) and its date drill-down, on a million rows.
            models.Index(fields=["occurred_at", "id"], name="consentevent_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.purpose_id} · {self.employer_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Consent events are a ledger: they are never changed."))
        super().save(*args, **kwargs)


class Consent(models.Model):
    """The current state for one student, employer and purpose, derived from the ledger in
    the same transaction as each event. Invariant: `granted` is true only while the newest
    version the student accepted lists the purpose (lapses are applied on acceptance)."""

    # No index of their own: one_consent_state leads with the student and the (employer,
    # purpose, granted) index with the employer. Every withdrawal rewrites its state row in
    # each of the table's indexes (a filing: 38 rows), so none is kept that another covers.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="consents",
        verbose_name=_("student"),
        db_index=False,
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("employer"),
        db_index=False,
    )
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="consents", verbose_name=_("purpose")
    )
    granted = models.BooleanField(_("granted"), default=False)
    event = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, related_name="+", verbose_name=_("latest event")
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("consent (current state)")
        verbose_name_plural = _("consents (current state)")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "employer", "purpose"], name="one_consent_state"
            )
        ]
        indexes = [
            models.Index(fields=["employer", "purpose", "granted"]),
            models.Index(fields=["updated_at"], name="consent_updated"),  # the date drill-down
        ]

    def __str__(self) -> str:
        return f"{self.student_id} · {self.employer_id} · {self.purpose_id}: {self.granted}"


def default_scopes() -> list[str]:
    return ["consents"]


class ApiClient(models.Model):
    """Who may call the consent API: the site's own pipeline, or one employer."""

    class Kind(models.TextChoices):
        PIPELINE = "pipeline", _("the site's analytics pipeline")
        EMPLOYER = "employer", _("a client company")

    class Scope(models.TextChoices):
        # What every key could do before scopes existed: check, read the feed, record
        # provisions. Existing keys keep it (the field's default).
        CONSENTS = "consents", _("consents: check, changes, provisions")
        ACTIVITY_WRITE = "activity:write", _("activity:write: send the site's activity records")
        INFERENCES_WRITE = "inferences:write", _("inferences:write: send the pipeline's inferences")
        # A company's own data-rights requests (GET /requests, POST /requests/…/answer).
        REQUESTS_READ = "requests:read", _("requests:read: list the company's requests")
        REQUESTS_ANSWER = "requests:answer", _("requests:answer: answer the company's requests")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="api_clients",
        verbose_name=_("employer"),
    )
    key_prefix = models.CharField(
        _("key prefix"), max_length=12, help_text=_("To recognise a key.")
    )
    key_sha256 = models.CharField(_("SHA-256 of the key"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    scopes = models.JSONField(
        _("scopes"),
        default=default_scopes,
        help_text=_("What the key may call; fixed when it is made."),
    )

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="pipeline", employer__isnull=True)
                | models.Q(kind="employer", employer__isnull=False),
                name="employer_key_names_its_employer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IdempotencyKey(models.Model):
    """A sender's `Idempotency-Key` and the answer its first successful call got, so that a
    retry is answered the same without recording twice. Purged by the retention job."""

    client = models.ForeignKey(
        ApiClient,
        on_delete=models.CASCADE,
        related_name="idempotency_keys",
        verbose_name=_("API client"),
    )
    key = models.CharField(_("key"), max_length=255)
    operation = models.CharField(_("operation"), max_length=60)
    request_sha256 = models.CharField(_("SHA-256 of the request"), max_length=64)
    status = models.PositiveSmallIntegerField(_("status"))
    # The body as sent, byte for byte (jsonb would reorder its keys).
    response = models.TextField(_("response"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(
                fields=["client", "operation", "key"], name="one_answer_per_idempotency_key"
            )
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.client_id} · {self.operation} · {self.key}"


class Provision(models.Model):
    """A student's data was given to an employer (APPI Art. 29 record; kept 3 years).

    Created only by `consent.services.provision_record`, which refuses without a valid grant.
    """

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="provisions",
        verbose_name=_("student"),
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="provisions",
        verbose_name=_("employer"),
    )
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, related_name="provisions", verbose_name=_("purpose")
    )
    consent_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.PROTECT,
        related_name="provisions",
        verbose_name=_("the grant it relied on"),
    )
    data_items = models.CharField(_("data items"), max_length=500)
    provided_at = models.DateTimeField(
        _("provided at"), help_text=_("The last time, for a bulk record.")
    )
    first_provided_at = models.DateTimeField(_("first provided at"), null=True, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        ApiClient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="provisions",
        verbose_name=_("recorded by"),
    )
    reference = models.CharField(
        _("caller's reference"),
        max_length=100,
        blank=True,
        help_text=_("Lets a caller retry a recording without making a second one."),
    )

    class Meta:
        verbose_name = _("provision record")
        verbose_name_plural = _("provision records")
        ordering = ["-provided_at", "-id"]
        indexes = [
            models.Index(fields=["student", "employer", "-provided_at"]),
            models.Index(fields=["employer", "-provided_at"]),
            models.Index(fields=["purpose", "student"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recorded_by", "reference"],
                condition=~models.Q(reference=""),
                name="one_provision_per_reference",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} → {self.employer_id} ({self.purpose_id})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(_("Provision records are a ledger: they are never changed."))
        super().save(*args, **kwargs)


class StopUseNotice(models.Model):
    """An email telling an employer that already received a student's data to stop using it,
    sent after a withdrawal. Its delivery state is the email's (queued, sent, failed)."""

    event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.PROTECT,
        related_name="stop_use_notices",
        verbose_name=_("withdrawal"),
    )
    employer = models.ForeignKey(
        "portal.Employer",
        on_delete=models.PROTECT,
        related_name="stop_use_notices",
        verbose_name=_("employer"),
    )
    email = models.OneToOneField(
        "portal.EmailMessage",
        on_delete=models.PROTECT,
        related_name="stop_use_notice",
        verbose_name=_("email"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("stop-use notice")
        verbose_name_plural = _("stop-use notices")

    def __str__(self) -> str:
        return f"{self.employer_id} · {self.event_id}"
