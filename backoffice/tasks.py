"""The back office's Celery tasks: each a few lines calling one function."""

from celery import shared_task

from backoffice import retention


@shared_task
def retention_run() -> dict[str, int]:
    """Daily (CELERY_BEAT_SCHEDULE "retention-run"). Safe to run twice: a second run finds
    nothing left to delete."""
    return retention.retention_run()
