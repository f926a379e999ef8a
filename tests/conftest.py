import os
import re
import time

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db.models.signals import post_migrate
from django.utils import translation

from portal.celery import app
from tests.smtp import SmtpServer, smtp_settings
from tests.sso.site import oidc_provider  # noqa: F401 - the stand-in job site (session-wide)

# Where this worker's broker and cache were pointed before it moved them: (before, after).
REDIS_MOVED: dict[str, tuple[str, str]] = {}


# Fixtures that reach the database; a test with none of them (and no django_db mark) runs the
# same on SQLite and PostgreSQL.
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
    "admin_client",
    "admin_user",
    "django_user_model",
}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="leave out the tests that reach no database and no broker, and those marked "
        "same_on_every_database: .ci/run's PostgreSQL pass, after the SQLite pass ran them",
    )
    parser.addoption(
        "--leave-to-postgresql",
        action="store_true",
        help="leave out the tests marked left_to_postgresql: .ci/run's SQLite pass, while "
        "the PostgreSQL pass runs them on the real parts",
    )


def uses_database(item) -> bool:
    """Whether the test's outcome can depend on the database it runs on. A test marked
    `same_on_every_database` reaches one only to hold the rows of what it renders: what it
    checks is the renderer's (a PDF made from text typed into every field, each page of a
    journey in the other language, a form's errors read by keyboard)."""
    if item.get_closest_marker("same_on_every_database"):
        return False
    return bool(
        item.get_closest_marker("django_db")
        or item.get_closest_marker("real_broker")
        or DATABASE_FIXTURES & set(item.fixturenames)
    )


def _slowest_first(item) -> int:
    # Under pytest-xdist the run lasts as long as its busiest worker: hand out the fault
    # scenarios (minutes each) and the browser journeys first, not last.
    if item.get_closest_marker("faults"):
        return 0
    if item.get_closest_marker("e2e"):
        return 1
    if item.get_closest_marker("real_broker"):
        return 2
    return 3


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py has marked its tests
def pytest_collection_modifyitems(config, items):
    if config.getoption("--database-tests-only"):
        same_everywhere = [item for item in items if not uses_database(item)]
        if same_everywhere:
            config.hook.pytest_deselected(items=same_everywhere)
            items[:] = [item for item in items if uses_database(item)]
    if config.getoption("--leave-to-postgresql"):
        elsewhere = [item for item in items if item.get_closest_marker("left_to_postgresql")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [i for i in items if not i.get_closest_marker("left_to_postgresql")]
    items.sort(key=_slowest_first)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With PYTEST_TIMELINE=<folder>, each worker writes a line per test: its name, when it
    started and ended (seconds since the epoch), its test: where a CI pass spends its time,
    and which worker ran what (docs/testing.md)."""
    folder = os.environ.get("PYTEST_TIMELINE")
    started = time.time()
    try:
        return (yield)
    finally:
        if folder:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            with open(os.path.join(folder, f"{worker}.tsv"), "a", encoding="utf-8") as out:
                out.write(f"{worker}\t{started:.2f}\t{time.time():.2f}\t{item.nodeid}\n")


def pytest_configure(config):
    _own_redis_databases(os.environ.get("PYTEST_XDIST_WORKER", ""))
    post_migrate.connect(_roles_again, dispatch_uid="tests-roles-again")


def _roles_again(sender, **kwargs) -> None:
    """The roles' groups are rows a data migration made (backoffice/migrations). A
    transactional test ends by emptying every table, then sends post_migrate, which makes
    content types and permissions again but not those rows; any test after it on the same
    worker would miss the roles. Tests run slowest first (the transactional ones early), so
    the groups are made again here, after the last app's permissions exist."""
    last = [config for config in apps.get_app_configs() if config.models_module][-1]
    if sender is not last:
        return
    from django.contrib.auth.models import Group, Permission

    from backoffice.roles import ROLES, roles_apply

    if Group.objects.filter(name__in=ROLES).count() != len(ROLES):
        roles_apply(group_model=Group, permission_model=Permission)


def _own_redis_databases(worker: str) -> None:
    """Under pytest-xdist (`-n 2`), each worker process gets Redis databases of its own:
    one worker's `cache.clear()` (FLUSHDB) or broker purge must not empty another's, and a
    real Celery worker started by one must not take the tasks another published. pytest-django
    gives each its own test database the same way (test_<name>_gw0, _gw1, ...)."""
    number = int(worker.removeprefix("gw") or 0)
    if not number:
        return
    broker = _other_redis_database(django_settings.CELERY_BROKER_URL, number)
    if broker != django_settings.CELERY_BROKER_URL:
        REDIS_MOVED["broker"] = (django_settings.CELERY_BROKER_URL, broker)
        django_settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"] = broker
        app.conf.broker_url = broker
    location = django_settings.CACHES["default"].get("LOCATION", "")
    if isinstance(location, str) and location.startswith("redis"):
        moved = _other_redis_database(location, number)
        REDIS_MOVED["cache"] = (location, moved)
        django_settings.CACHES["default"]["LOCATION"] = os.environ["CACHE_URL"] = moved


def _other_redis_database(url: str, number: int) -> str:
    """redis://host:port/15 -> /13 for worker gw1, /11 for gw2 (the broker and the cache,
    15 and 14 in CI, move down in pairs)."""
    match = re.fullmatch(r"(rediss?://[^/]*)/(\d+)", url or "")
    if not match:
        return url
    database = int(match[2]) - 2 * number
    if database < 0:
        raise pytest.UsageError(f"too many xdist workers for the Redis databases of {url}")
    return f"{match[1]}/{database}"


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # Production serves hashed static files from collectstatic's manifest; tests render
    # templates without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is slow on purpose; tests that make hundreds of users need not be.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language():
    # Every test starts in the site's default language (LANGUAGE_CODE): a request through
    # the test client leaves its language active in the thread, and a test that read
    # English only because the test before it had asked for English failed alone.
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_cache():
    # allauth's rate limits count in the cache: one test's sign-ins must not use up the next's.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def eager_tasks(request):
    """Run queued tasks in this process, in the run with Redis too, so that a test sees
    their effects; tests marked `real_broker` send them to the broker and a real worker."""
    if request.node.get_closest_marker("real_broker"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback, with Django's SMTP backend pointed at it."""
    with SmtpServer() as server:
        for name, value in smtp_settings(server).items():
            setattr(settings, name, value)
        yield server
