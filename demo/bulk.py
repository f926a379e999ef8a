"""`seed_demo --students N`: bulk students for benchmarks (bulk.toml).

They bypass the per-row services (bulk_create), but their acceptances hold the same
invariants: the version's stored hash in the language shown, a valid screen, and a time
after the version took effect.
"""

import random
import time

from allauth.account.models import EmailAddress
from django.db import reset_queries, transaction

from consent.models import PolicyAcceptance, PolicyVersion
from demo import generate
from demo.specs import Demo
from portal.models import ActivityRecord, Employer, User


def seed_bulk(
    demo: Demo,
    out,
    total: int,
    batch_size: int,
    password_hash: str,
    versions: dict[str, PolicyVersion],
    employers: list[Employer],
) -> None:
    """Make sure bulk 1 … `total` exist; create the missing ones in batches, printing a
    progress bar on `out` (a management command's stdout)."""
    bulk = demo.bulk
    started = time.monotonic()
    existing = set(
        User.objects.filter(email__startswith=bulk.prefix, email__endswith=bulk.suffix).values_list(
            "email", flat=True
        )
    )
    missing = [n for n in range(1, total + 1) if bulk.email.format(n) not in existing]
    if not missing:
        out.write(f"All {total:,} bulk students already exist.")
        return
    rng = random.Random(demo.seed)
    ordered = sorted(versions.values(), key=lambda v: v.effective_at)
    done = 0
    progress(out, done, len(missing))
    for offset in range(0, len(missing), batch_size):
        batch = missing[offset : offset + batch_size]
        with transaction.atomic():
            bulk_batch(rng, demo, batch, ordered, employers, batch_size, password_hash)
        reset_queries()  # with DEBUG on, the logged INSERTs would pile up in memory
        done += len(batch)
        progress(out, done, len(missing))
    elapsed = time.monotonic() - started
    out.write("")
    out.write(
        f"Created {len(missing):,} bulk students in {elapsed:.1f} s "
        f"({total - len(missing):,} existed already)."
    )


def progress(out, done: int, total: int, width: int = 30) -> None:
    filled = width * done // total if total else width
    bar = "#" * filled + "." * (width - filled)
    out.write(f"\r[{bar}] {done:,}/{total:,} students", ending="")
    out.flush()


def bulk_batch(
    rng: random.Random,
    demo: Demo,
    numbers: list[int],
    versions: list[PolicyVersion],
    employers: list[Employer],
    batch_size: int,
    password_hash: str,
) -> None:
    users = [generate.bulk_user(rng, demo, n, password_hash) for n in numbers]
    User.objects.bulk_create(users, batch_size=batch_size)
    if any(user.pk is None for user in users):  # a backend that returns no ids
        ids = dict(
            User.objects.filter(email__in=[u.email for u in users]).values_list("email", "pk")
        )
        for user in users:
            user.pk = ids[user.email]

    addresses, acceptances, records = [], [], []
    for user in users:
        addresses.append(
            EmailAddress(user_id=user.pk, email=user.email, verified=True, primary=True)
        )
        acceptances.extend(generate.bulk_acceptances(rng, demo, user, versions))
        count = rng.randint(*demo.bulk.activity)
        records.extend(
            generate.activity_records(rng, demo, user.pk, user.date_joined, count, employers)
        )
    EmailAddress.objects.bulk_create(addresses, batch_size=batch_size)
    PolicyAcceptance.objects.bulk_create(acceptances, batch_size=batch_size)
    ActivityRecord.objects.bulk_create(records, batch_size=batch_size)
