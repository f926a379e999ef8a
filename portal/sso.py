"""Sign-in with the job site's account (OpenID Connect): the portal's rules on top of
allauth's socialaccount, which does the protocol (code flow with PKCE, state, tokens).

- The link between a portal account and the site's account is the site's subject id
  (allauth's SocialAccount, uid = "sub"), never the email address: the site may change it.
- Staff never sign in this way. The back office shows every student's data and opens only
  with the portal's own password and second factor; the job site is the party whose use of
  students' data the portal exists to check, so whoever controls its sign-in (its admins, or
  someone who breaks in) must not thereby hold a key to the back office. A staff account is
  refused whether it is reached by a link, by a matching email, or by connecting one.
- When the site says a linked student's address changed (and that the new one is verified),
  the portal's address follows: it is where receipts and request notices go, and a student
  who changed it at the site expects them at the new one. An address held by another portal
  account is left alone (the link by subject id still works).
"""

import logging

from allauth.account.models import EmailAddress
from django.db import transaction

from portal.models import User

logger = logging.getLogger(__name__)


def sso_allowed(*, user: User) -> bool:
    """Whether `user` may sign in, or link an account, through the job site."""
    return not (user.is_staff or user.is_superuser)


def sso_email_follow(*, user: User, email: str) -> bool:
    """Make `email` (verified by the job site) the student's one address. Returns whether it
    changed; an address another account holds is refused, and the old one stays."""
    email = email.strip().lower()
    if not email or email == user.email.lower():
        return False
    with transaction.atomic():
        taken = (
            User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
            or EmailAddress.objects.filter(email__iexact=email).exclude(user=user).exists()
        )
        if taken:
            logger.warning(
                "SSO: the job site's new address for user %s is another account's; kept",
                user.pk,
            )
            return False
        user.email = email
        user.save(update_fields=["email"])
        # One address per account (ACCOUNT_CHANGE_EMAIL): the site's replaces the old one.
        EmailAddress.objects.filter(user=user).delete()
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return True
