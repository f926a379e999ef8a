from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import translation

from portal.emails import email_queue_message
from portal.http import client_ip, page_language
from portal.redirects import is_own_path


class AccountAdapter(DefaultAccountAdapter):
    def is_safe_url(self, url: str | None) -> bool:
        # Every `next` of sign-in, sign-out and re-authentication: one of our paths only,
        # not allauth's "any host in ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS".
        return is_own_path(url)

    def send_mail(self, template_prefix, email, context):
        # Render now, in the language the person is using; deliver through the outbox so a
        # slow or failing SMTP server never breaks sign-up and every message is retried.
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
        # The language a person chose follows them to every device they sign in on.
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
