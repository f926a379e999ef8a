"""Each pytest-xdist worker has Redis databases of its own (tests/conftest.py), so that two
workers' cache flushes, broker purges and real Celery workers never meet."""

import os

import pytest
from django.conf import settings
from django.core.cache import cache

from portal.celery import app
from tests.conftest import REDIS_MOVED, _other_redis_database


def test_each_worker_moves_down_two_databases():
    assert _other_redis_database("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/13"
    assert _other_redis_database("rediss://:pw@host:6380/14", 3) == "rediss://:pw@host:6380/8"


def test_urls_without_a_database_number_stay_as_they_are():
    assert _other_redis_database("", 1) == ""
    assert _other_redis_database("amqp://guest@localhost//", 1) == "amqp://guest@localhost//"


def test_too_many_workers_for_the_databases_is_said_plainly():
    with pytest.raises(pytest.UsageError, match="too many xdist workers"):
        _other_redis_database("redis://127.0.0.1:6379/3", 2)


@pytest.mark.real_broker  # about the pass's broker: kept by --database-tests-only
@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"), reason="needs Redis (the PostgreSQL pass)"
)
def test_this_worker_publishes_and_caches_in_its_own_databases():
    number = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    if not number:  # the first worker (or no xdist) keeps the databases it was given
        assert not REDIS_MOVED
        return
    before, after = REDIS_MOVED["broker"]
    assert after == _other_redis_database(before, number) != before
    assert app.conf.broker_url == settings.CELERY_BROKER_URL == os.environ["CELERY_BROKER_URL"]
    assert app.connection_for_write().as_uri().endswith("/" + after.rsplit("/", 1)[1])
    before, after = REDIS_MOVED["cache"]
    assert after == _other_redis_database(before, number) != before
    assert cache._cache._servers == [after]
