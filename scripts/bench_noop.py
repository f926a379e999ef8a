"""The no-op task of scripts/bench_dispatch.py's baseline, loaded into its worker with
`-I bench_noop` (scripts/ on PYTHONPATH); never part of the portal.

It does nothing but note when it ran (one RPUSH to the broker's Redis), so the benchmark
can tell when the last of a backlog ran and how fast the worker went through it.
"""

import os
import time

import redis
from celery import shared_task

_client: redis.Redis | None = None


@shared_task(name="bench.noop", ignore_result=True)
def noop(key: str) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    _client.rpush(key, time.time())
