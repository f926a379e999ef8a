"""Writing and checking the audit log.

`audit_record` is the only way an entry is made. It runs inside the caller's transaction, so
a change and its entry commit or roll back together, and it serialises writers (an advisory
lock on PostgreSQL; SQLite has one writer anyway) so the chain never forks.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditEntry
from portal.shared.http import client_ip

GENESIS = "0" * 64
# Any constant: the key of the PostgreSQL advisory lock that serialises writers.
CHAIN_LOCK_KEY = 0x5D9A_0D17

# The fields whose values make up an entry's hash, in this order.
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "name",
    "target_type",
    "target_id",
    "target_repr",
    "changes",
    "reason",
    "ip",
)


def _plain(value):
    """What a JSONField will give back after a round trip through the database."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False))


def entry_content(entry: AuditEntry) -> str:
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        if name == "at":
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(entry: AuditEntry) -> str:
    payload = (entry.prev_hash + "\n" + entry_content(entry)).encode()
    return hashlib.sha256(payload).hexdigest()


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def audit_record(
    *,
    action: str,
    actor=None,
    request: HttpRequest | None = None,
    target: models.Model | None = None,
    name: str = "",
    changes: dict | None = None,
    reason: str = "",
    actor_label: str = "",
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
) -> AuditEntry:
    """Append one entry. `actor` defaults to the request's user; `target` to nothing."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)
    with transaction.atomic():
        _lock_chain()
        last = AuditEntry.objects.order_by("-seq").values("seq", "entry_hash").first()
        entry = AuditEntry(
            seq=(last["seq"] + 1) if last else 1,
            at=timezone.now(),
            actor=actor,
            actor_label=actor_label or (actor.get_username() if actor is not None else ""),
            action=action,
            name=name,
            target_type=target_type,
            target_id=target_id,
            target_repr=target_repr[:300],
            changes=_plain(changes or {}),
            reason=reason or "",
            ip=client_ip(request) if request is not None else None,
            prev_hash=last["entry_hash"] if last else GENESIS,
        )
        entry.entry_hash = entry_hash(entry)
        entry.save(force_insert=True)
    return entry


@dataclass(frozen=True)
class Break:
    seq: int
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        return f"entry #{self.seq}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def _first_break(entry: AuditEntry, expected_seq: int, expected_prev: str) -> Break | None:
    if entry.seq != expected_seq:
        return Break(
            expected_seq,
            None,
            f"missing: the entries from here to #{entry.seq - 1} were deleted"
            if entry.seq > expected_seq
            else "out of order",
        )
    if entry.prev_hash != expected_prev:
        return Break(entry.seq, entry.pk, "does not follow the entry before it")
    if entry_hash(entry) != entry.entry_hash:
        return Break(entry.seq, entry.pk, "its content was changed after it was written")
    return None


def audit_verify() -> ChainReport:
    """Walk the whole chain in order; report the first broken link (or none)."""
    checked, expected_seq, expected_prev = 0, 1, GENESIS
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        checked += 1
        broken = _first_break(entry, expected_seq, expected_prev)
        if broken is not None:
            return ChainReport(checked=checked, first_break=broken)
        expected_seq, expected_prev = entry.seq + 1, entry.entry_hash
    return ChainReport(checked=checked, first_break=None)
