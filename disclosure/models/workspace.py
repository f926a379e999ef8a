"""A company's workspace: the links that open it and what was done with them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models.companies import RecipientTask


class WorkspaceLink(models.Model):
    """A link that signs a browser in to one company's workspace (every task passed to it),
    once, within a few days.

    Sent to one of the company's privacy contacts when they ask for it, or in the company's
    digest. Only the SHA-256 of its token is stored; the token is in the email. Using it
    (`used_at`) spends it; the session it opened lasts while the link has not expired or been
    revoked. Staff can revoke it; a digest's link replaces (revokes) the company's earlier
    digest links nobody used."""

    class Origin(models.TextChoices):
        ASKED = "asked", _("an email a contact asked for")
        DIGEST = "digest", _("a digest")

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
    origin = models.CharField(
        _("sent in"), max_length=8, choices=Origin.choices, default=Origin.ASKED
    )
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
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("workspace link")
        verbose_name_plural = _("workspace links")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["employer", "-created_at"], name="workspacelink_employer")]

    def __str__(self) -> str:
        return f"{self.employer_id} · {self.email} · {self.token_sha256[:8]}…"

    def works(self, now=None) -> bool:
        """Whether a session it opened still may go on (a used link's too)."""
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now

    def state(self, now=None) -> str:
        """ "revoked" by staff (with their name), "replaced" by a newer digest's link (revoked
        with none), "expired", "used", or "works" (it may still sign a browser in)."""
        if self.revoked_at is not None:
            return "revoked" if self.revoked_by_id is not None else "replaced"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "used" if self.used_at is not None else "works"

    def opens(self, now=None) -> bool:
        """Whether it may still sign a browser in: working and never used."""
        return self.used_at is None and self.works(now)


class WorkspaceEvent(models.Model):
    """What was done with a workspace link: each sign-in and each answer given in it, for
    staff to read under the company. Append-only."""

    class Kind(models.TextChoices):
        SENT = "sent", _("link sent")
        SIGNED_IN = "signed_in", _("signed in")
        ANSWERED = "answered", _("answered tasks")
        REVOKED = "revoked", _("link revoked by staff")
        REPLACED = "replaced", _("link replaced by a newer digest")
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
