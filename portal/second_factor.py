"""Second factors of staff accounts: whether one is active, and the Privacy officer's reset.

allauth.mfa keeps the authenticators (TOTP, WebAuthn keys, recovery codes); these functions
are the portal's rules on top: what counts as a second factor for the admin, and how a lost
one is removed (only with a reason, never one's own, recorded in the audit log).
"""

from allauth.mfa.models import Authenticator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from audit.log import audit_record
from audit.models import AuditEntry

# Recovery codes alone are not a second factor: they are the way back in when one is lost.
SECOND_FACTOR_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
RESET_SECOND_FACTOR = "portal.reset_second_factor"


def second_factor_active(*, user) -> bool:
    return Authenticator.objects.filter(user=user, type__in=SECOND_FACTOR_TYPES).exists()


def second_factor_reset(*, user, by, reason: str, request: HttpRequest | None = None) -> list[str]:
    """Remove every authenticator of `user` (TOTP, keys, recovery codes), so that on their
    next visit to the admin they must set up a new one. Returns the types removed."""
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Give the reason for the reset."))
    if user.pk == by.pk:
        # Four eyes: an officer who lost their own factor asks another officer.
        raise ValidationError(_("You cannot reset your own second factor: ask another officer."))
    with transaction.atomic():
        authenticators = list(
            Authenticator.objects.select_for_update().filter(user=user).order_by("type", "pk")
        )
        if not authenticators:
            raise ValidationError(_("This account has no second factor to reset."))
        removed = [a.type for a in authenticators]
        Authenticator.objects.filter(pk__in=[a.pk for a in authenticators]).delete()
        audit_record(
            action=AuditEntry.Action.ACTION,
            name=RESET_SECOND_FACTOR,
            actor=by,
            request=request,
            target=user,
            changes={"authenticators": [removed, []]},
            reason=reason,
        )
    return removed
