import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import (
    get_authentication_records,
    record_authentication,
)
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _

from portal.models import LANGUAGE_CHOSEN_SIGNED_OUT, Language
from portal.shared.emails import email_queue_message
from portal.shared.http import client_ip, page_language
from portal.shared.redirects import is_own_path
from portal.shared.sealing import Slots, seal_text, unseal_text
from portal.sso import sso_allowed, sso_email_follow

logger = logging.getLogger(__name__)

# The sign-ins that count as a fresh re-authentication (not the job site's: the portal never
# saw that person prove anything; they confirm by an emailed code).
FRESH_SIGN_IN = {"password"}

# The values of allauth's email contexts that grant access: the password-reset link and its
# key, the email-confirmation link and key, and the codes of sign-in, re-authentication
# and confirmation by code.
SECRET_CONTEXT = ("password_reset_url", "activate_url", "key", "code")


class AccountAdapter(DefaultAccountAdapter):
    def is_safe_url(self, url: str | None) -> bool:
        # Every `next` of sign-in, sign-out and re-authentication: one of our paths only,
        # not allauth's "any host in ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS".
        return is_own_path(url)

    def send_mail(self, template_prefix, email, context):
        # Render now, in the language the person is using; deliver through the outbox so a
        # slow or failing SMTP server never breaks sign-up and every message is retried.
        # What grants access (a reset link, a confirmation key, a code) is rendered as a
        # placeholder and sealed: it reaches SMTP and nothing else (portal/shared/sealing.py).
        slots = Slots()
        context = {
            **context,
            **{name: slots.hide(str(context[name])) for name in SECRET_CONTEXT if name in context},
        }
        message = self.render_mail(template_prefix, email, context)
        html = next(
            (
                body
                for body, mimetype in getattr(message, "alternatives", [])
                if mimetype == "text/html"
            ),
            "",
        )
        email_queue_message(
            to=email,
            subject=message.subject,
            body_text=message.body,
            body_html=html,
            kind=template_prefix.rsplit("/", 1)[-1],
            language=page_language(),
            slots=slots,
        )

    def get_client_ip(self, request):
        # allauth's rate limits (sign-in, sign-up, password reset) count per address: the
        # same address as the portal's own limits and audit log, so X-Forwarded-For is
        # trusted exactly when BEHIND_PROXY is on, for both.
        address = client_ip(request)
        if address is None:
            raise PermissionDenied("Unable to determine client IP address")
        return address

    def post_login(self, request, user, **kwargs):
        response = super().post_login(request, user, **kwargs)
        sociallogin = (kwargs.get("signal_kwargs") or {}).get("sociallogin")
        if (
            not user.is_staff
            and sociallogin is None
            and (
                kwargs.get("signup")
                or any(
                    r.get("method") in FRESH_SIGN_IN
                    for r in get_authentication_records(request, user)
                )
            )
        ):
            # A sign-in by password, or a sign-up just confirmed by the emailed link, is as
            # fresh a proof as re-entering the password: filing a request right after it
            # does not ask "Confirm access" again (allauth counts only explicit
            # re-authentications). It lasts ACCOUNT_REAUTHENTICATION_TIMEOUT, like one. Not for
            # staff: a second factor added or an account changed always asks again.
            record_authentication(request, user, method="password", reauthenticated=True)
        if sociallogin is not None:
            # Only once the sign-in is complete (after a second factor, if any).
            _follow_site_email(request, user, sociallogin)
        # A language chosen on the sign-in page is kept, and becomes the account's; otherwise
        # the account's language follows the person to every device they sign in on.
        chosen = request.session.pop(LANGUAGE_CHOSEN_SIGNED_OUT, None)
        if chosen in Language.values and chosen != user.language:
            user.language = chosen
            user.save(update_fields=["language"])
        if user.language:
            translation.activate(user.language)
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                user.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


def _verified_site_email(sociallogin) -> str | None:
    for address in sociallogin.email_addresses:
        if address.verified and address.primary:
            return address.email
    return None


def _follow_site_email(request, user, sociallogin) -> None:
    email = _verified_site_email(sociallogin)
    if email and sso_email_follow(user=user, email=email):
        messages.info(
            request,
            _("Your email address here is now %(email)s, as at %(site)s.")
            % {"email": email, "site": sociallogin.provider.name},
        )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Sign-in with the job site (portal/sso.py has the rules)."""

    def pre_social_login(self, request, sociallogin):
        # The account this sign-in would reach: linked by subject id, matched by a verified
        # email, or (connecting) the one signed in. allauth has looked it up already.
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            reached = request.user
        else:
            reached = sociallogin.user if sociallogin.is_existing else None
        if reached is not None and reached.is_authenticated and not sso_allowed(user=reached):
            logger.warning("SSO refused for staff account %s", reached.pk)
            raise ImmediateHttpResponse(
                render(request, "socialaccount/staff_refused.html", status=403)
            )

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        # A name longer than the field is not cut: left empty, the sign-up form asks for one
        # and says the limit.
        name = data.get("name") or ""
        user.display_name = name if len(name) <= 100 else ""
        user.language = page_language()
        return user

    def is_auto_signup_allowed(self, request, sociallogin):
        # Without a name from the site, the sign-up form asks for one (and nothing else).
        return super().is_auto_signup_allowed(request, sociallogin) and bool(
            sociallogin.user.display_name
        )

    def on_authentication_error(self, request, provider, error=None, exception=None, **kwargs):
        # The page says only that it did not work; the reason is for the operator: the
        # exception's kind, not its text, which can quote the token endpoint's whole reply
        # (allauth's OAuth2Error when the reply lacks an access token).
        logger.warning(
            "SSO sign-in failed: %s %s", error, type(exception).__name__ if exception else "-"
        )
        super().on_authentication_error(request, provider, error, exception, **kwargs)


class MFAAdapter(DefaultMFAAdapter):
    """allauth keeps the TOTP secret and the recovery codes' seed in the database: sealed
    here (portal/shared/sealing.py), so a reader of the table or a backup cannot make codes."""

    def encrypt(self, text: str) -> str:
        return seal_text(text)

    def decrypt(self, encrypted_text: str) -> str:
        return unseal_text(encrypted_text)
