"""Rows made once for a test module and shared by its tests (docs/testing.md)."""

import contextlib

from django.db import transaction
from django.test import override_settings

from portal.celery import app


@contextlib.contextmanager
def module_rows(django_db_blocker, **settings):
    """For a module-scoped fixture that makes rows its tests only read: the database open,
    tasks in-process and password hashing fast (as the autouse fixtures, not yet applied at
    module scope), `settings` overridden, inside a transaction rolled back after the
    module's last test. Each test runs in a savepoint within it, as pytest-django nests it,
    so what one test adds is gone before the next."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(
                PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], **settings
            ),
            transaction.atomic(),
        ):
            yield
            transaction.set_rollback(True)
    finally:
        app.conf.task_always_eager = previous
