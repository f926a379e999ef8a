import pytest
from django.core.cache import cache

from portal.celery import app
from tests.smtp import SmtpServer
from tests.sso.site import oidc_provider  # noqa: F401 - the stand-in job site (session-wide)


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
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        yield server
