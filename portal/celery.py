import os

from celery import Celery, signals
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


class KeptConnectionsWorkerFixup(DjangoWorkerFixup):
    """Celery's Django fixup, except that a worker keeps its database connections across
    tasks, as a web process keeps them across requests.

    The stock fixup closes every connection before and after each task, so each task opened
    a new PostgreSQL connection (about 13% of a worker's busy time passing requests on).
    Here, around each task, Django's own `close_old_connections` closes only a connection
    that is broken (an error left it unusable), inside a transaction left open, or older
    than CONN_MAX_AGE; with CONN_HEALTH_CHECKS the next task's first query checks the kept
    connection first and opens a new one if PostgreSQL went away meanwhile (a restart, a
    fail-over). Connections inherited over a fork are still closed (the stock
    `on_worker_process_init`).
    """

    def on_task_prerun(self, sender, **kwargs) -> None:
        if not getattr(sender.request, "is_eager", False):
            self._db.close_old_connections()

    def on_task_postrun(self, sender, **kwargs) -> None:
        if not getattr(sender.request, "is_eager", False):
            self._db.close_old_connections()
            self.close_cache()


class PortalDjangoFixup(DjangoFixup):
    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        if self._worker_fixup is None:
            self._worker_fixup = KeptConnectionsWorkerFixup(self.app)
        return self._worker_fixup

    @worker_fixup.setter
    def worker_fixup(self, value: DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def fixup(app: Celery) -> DjangoFixup:
    """In place of Celery's `celery.fixups.django:fixup` (DJANGO_SETTINGS_MODULE is set above)."""
    return PortalDjangoFixup(app).install()


app = Celery("portal", fixups=[fixup])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery sets up the worker's and beat's logging itself, replacing the handlers
# settings.LOGGING gave the root logger (and with them the filter that masks secrets): the
# filter goes back on each handler it makes, its own task logger's too.
@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _mask_secrets(logger, **kwargs) -> None:
    from portal.shared.logs import mask_handlers

    mask_handlers(logger)


# A worker keeps one connection to the mail server per process (portal/shared/mail_connection.py).
@signals.worker_init.connect
def _keep_mail_connections(**kwargs) -> None:
    from portal.shared.mail_connection import mail_connection_keep

    mail_connection_keep()


@signals.worker_process_init.connect
def _forget_inherited_mail_connection(**kwargs) -> None:
    from portal.shared.mail_connection import mail_connection_forget

    mail_connection_forget()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close_mail_connection(**kwargs) -> None:
    from portal.shared.mail_connection import mail_connection_close

    mail_connection_close()
