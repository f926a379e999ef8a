from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        from portal import checks  # noqa: F401 - registers the deployment checks
        from portal.celery import app

        # Register every app's tasks now, in web processes too: work is queued by task name
        # (portal/shared/queueing.py), and the name must resolve to the task, eager or not.
        app.autodiscover_tasks(force=True)

        from django.contrib.auth.signals import user_logged_in

        from portal.session_lifetime import session_lifetime_on_login

        # The session's clock starts at every sign-in, allauth's and force_login's alike.
        user_logged_in.connect(session_lifetime_on_login, dispatch_uid="portal.session_lifetime")
