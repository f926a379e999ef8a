"""The scale benchmark (issue 11, "Scale"): `make bench-scale`, PostgreSQL only.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_scale \
        .venv/bin/python scripts/bench_scale.py [--reload] [--students 100000] ...

Loads, with PostgreSQL COPY, 100,000 students (with their acceptances), 30,000 employers
(with a privacy contact each), 1,000,000 consent events (and the current state they lead
to), 1,000,000 activity records (all past their retention period), 100,000 requests (with
their company tasks and timelines), 100,000 audit log entries (a valid chain), and one
student with 10,000 recent activity records and an open disclosure request. A second run
finds the counts there and only measures; the retention job deletes the expired activity
records at the end of a run, so the next run loads those again (about 30 s). `--reload`
drops the database and starts over.

Then it prints, each with its goal and ok/FAIL: the consent check (1,000 triples, against a
bare view in one gunicorn, as scripts/bench_api.py), the changes feed, every admin
changelist staff use (plain, searched, filtered, page 2 and a deep page), the dashboard, the
impact report and its CSV, the disclosure report (PDF + JSON) of the heavy student, and the
retention job over the expired rows. Any query over 100 ms is printed with its
EXPLAIN (ANALYZE, BUFFERS).
"""

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
import warnings
from datetime import datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_scale"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
    raise SystemExit(
        "bench-scale measures PostgreSQL only (COPY, EXPLAIN, pg_class estimates): set "
        f"DATABASE_URL=postgres://... (default {DEFAULT_DATABASE_URL}); "
        f"got {os.environ['DATABASE_URL'].split(':')[0]}:"
    )

import dj_database_url  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402


def _database_ensure(url: str, *, drop: bool) -> None:
    """Create the benchmark's database if it is missing (or drop it first with --reload)."""
    config = dj_database_url.parse(url)
    name = config["NAME"]
    admin = psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", file=sys.stderr)


if __name__ == "__main__":
    _database_ensure(os.environ["DATABASE_URL"], drop="--reload" in sys.argv)

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at")
django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections, connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.log import GENESIS, HASHED_FIELDS, entry_hash  # noqa: E402
from audit.models import AuditEntry  # noqa: E402
from consent.models import (  # noqa: E402
    Consent,
    ConsentEvent,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
)
from demo.load import load as load_demo  # noqa: E402
from disclosure.models import DataRequest, RecipientTask, RequestEvent  # noqa: E402
from portal.models import (  # noqa: E402
    ActivityRecord,
    Employer,
    User,
    corporate_number_check_digit,
)

DEMO = load_demo()  # the demo data (demo/data/): its password, names, words, staff
SEED = 2026
HEAVY_EMAIL = "heavy@example.jp"
BENCH_EMPLOYER = "ベンチ企業 {:05d}"
SLOW_QUERY = 0.100  # seconds: any query over this is printed with its plan


# --- loading --------------------------------------------------------------------------------


class Progress:
    """A plain progress bar on stderr: `label [#####.....] 12,345/100,000  45,000 rows/s`."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.started = self.shown = time.monotonic()
        self._show()

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown > 0.25 or self.done >= self.total:
            self.shown = now
            self._show()

    def _show(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        print(
            f"\r{self.label:<22} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done:>11,}/{self.total:,}  {rate:>9,.0f} rows/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> float:
        self._show()
        elapsed = time.monotonic() - self.started
        print(f"  {elapsed:.1f} s", file=sys.stderr)
        return elapsed


def _copy(table: str, columns: list[str], rows, *, label: str, total: int) -> None:
    """COPY `rows` (an iterable of tuples) into `table`, showing progress."""
    progress = Progress(label, total)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                progress.add()
    progress.close()


def _next_id(model) -> int:
    with connection.cursor() as cursor:
        table = model._meta.db_table
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def _sync_sequence(model) -> None:
    """Explicit ids were copied in: move the identity sequence past them."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608 - a model's table
            f"(SELECT coalesce(max(id), 1) FROM {table}))",
            [table],
        )


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.random() * (end - start).total_seconds())


class Loader:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(SEED)  # noqa: S311 - repeatable data, not a secret
        self.now = timezone.now()
        self.versions = list(PolicyVersion.objects.published().order_by("effective_at"))
        self.newest = self.versions[-1]
        self.purposes = {p.code: p for p in Purpose.objects.all()}
        self.opt_in = [p for p in self.purposes.values() if p.requires_opt_in]
        self.staff = User.objects.get(email=DEMO.superuser.email)

    # Employers: the demo's 38 are the popular ones; the rest make up the long tail.
    def employers(self) -> None:
        have = Employer.objects.count()
        wanted = self.args.employers - have
        start = _next_id(Employer)
        ids = range(start, start + max(wanted, 0))
        created = self.now - timedelta(days=900)
        _copy(
            "portal_employer",
            [
                "id",
                "name",
                "name_en",
                "corporate_number",
                "is_active",
                "created_at",
                "request_delivery",
            ],
            (
                (
                    pk,
                    BENCH_EMPLOYER.format(pk),
                    f"Bench Employer {pk:05d}",
                    f"{corporate_number_check_digit(f'9{pk:011d}')}9{pk:011d}",
                    pk % 50 != 0,
                    created,
                    Employer.Delivery.EACH,
                )
                for pk in ids
            ),
            label="employers",
            total=len(ids),
        )
        _sync_sequence(Employer)
        _copy(
            "portal_privacycontact",
            ["employer_id", "name", "email", "language", "is_primary", "created_at"],
            (
                (pk, "個人情報窓口", f"privacy@bench-{pk}.example.jp", "ja", True, created)
                for pk in ids
            ),
            label="privacy contacts",
            total=len(ids),
        )

    def students(self) -> None:
        rng, count = self.rng, self.args.students
        password = make_password(DEMO.password)
        start = _next_id(User)
        self.student_ids = list(range(start, start + count))
        joined = {}

        def users():
            for n, pk in enumerate(self.student_ids, 1):
                at = _time(rng, DEMO.history_start, DEMO.history_end)
                joined[pk] = at
                yield (
                    pk,
                    password,
                    False,
                    DEMO.bulk.email.format(n),
                    f"{rng.choice(DEMO.bulk.surnames)} {rng.choice(DEMO.bulk.given_names)}",
                    _uuid(rng),
                    "en" if rng.random() < 0.05 else "ja",
                    False,
                    True,
                    at,
                )

        _copy(
            "portal_user",
            [
                "id",
                "password",
                "is_superuser",
                "email",
                "display_name",
                "public_id",
                "language",
                "is_staff",
                "is_active",
                "date_joined",
            ],
            users(),
            label="students",
            total=count,
        )
        _sync_sequence(User)
        _copy(
            EmailAddress._meta.db_table,
            ["user_id", "email", "verified", "primary"],
            (
                (pk, DEMO.bulk.email.format(n), True, True)
                for n, pk in enumerate(self.student_ids, 1)
            ),
            label="email addresses",
            total=count,
        )
        self.acceptances(joined)

    def acceptances(self, joined: dict[int, datetime]) -> None:
        """Sign-up on the version in force, then each later one with some chance: about 60%
        end on the newest (2019.03), which lists the behaviour-data purposes."""
        rng, versions = self.rng, self.versions
        self.accepted_newest: dict[int, datetime] = {}

        def rows():
            for pk, at in joined.items():
                first = max((i for i, v in enumerate(versions) if v.effective_at <= at), default=0)
                when = max(at, versions[first].effective_at)
                for i in range(first, len(versions)):
                    if i > first and rng.random() < 0.3:
                        break
                    version = versions[i]
                    when = max(when, version.effective_at) + timedelta(
                        minutes=rng.randint(1, 60 * 24 * 20)
                    )
                    if version is self.newest:
                        self.accepted_newest[pk] = when
                    yield (
                        _uuid(rng),
                        pk,
                        version.pk,
                        when,
                        "signup" if i == first else "reconsent",
                        "ja",
                        version.text_sha256_ja,
                        "web form: explicit accept button",
                        rng.choice(DEMO.activity.ip_addresses),
                        rng.choice(DEMO.activity.user_agents),
                    )

        _copy(
            "consent_policyacceptance",
            [
                "receipt_id",
                "student_id",
                "version_id",
                "accepted_at",
                "screen",
                "language",
                "text_sha256",
                "collection_method",
                "ip_address",
                "user_agent",
            ],
            rows(),
            label="acceptances",
            total=int(len(joined) * 1.9),
        )

    def consent_events(self) -> None:
        """Grants (some withdrawn, some granted again) by the students whose newest version
        lists the purposes, after they accepted it; the current state is each pair's last."""
        rng, target = self.rng, self.args.consent_events
        acceptors = sorted(self.accepted_newest)
        popular = list(Employer.objects.order_by("pk").values_list("pk", flat=True)[:38])
        tail_start = popular[-1] + 1
        tail_end = Employer.objects.order_by("-pk").values_list("pk", flat=True).first()
        start = _next_id(ConsentEvent)
        states = []  # (student, employer, purpose, granted, event id, at)
        per_student = target / len(acceptors)

        def rows():
            pk, made = start, 0
            for index, student in enumerate(acceptors):
                quota = int(per_student * (index + 1)) - made
                at = self.accepted_newest[student]
                seen = set()
                while quota > 0:
                    employer = (
                        rng.choice(popular)
                        if rng.random() < 0.7
                        else rng.randint(tail_start, tail_end)
                    )
                    purpose = self.opt_in[0] if rng.random() < 0.7 else self.opt_in[1]
                    if (employer, purpose.pk) in seen:
                        continue
                    seen.add((employer, purpose.pk))
                    length = min(quota, rng.choices((1, 2, 3), (60, 25, 15))[0])
                    for step in range(length):
                        at += timedelta(minutes=rng.randint(1, 60 * 24 * 30))
                        action = "grant" if step % 2 == 0 else "withdraw"
                        yield (
                            pk,
                            _uuid(rng),
                            student,
                            employer,
                            purpose.pk,
                            action,
                            at,
                            "consent_page",
                            self.newest.pk,
                            "ja",
                            "student",
                            "",
                            "web form: per-employer switch",
                            rng.choice(DEMO.activity.ip_addresses),
                            rng.choice(DEMO.activity.user_agents),
                        )
                        pk += 1
                    states.append((student, employer, purpose.pk, length % 2 == 1, pk - 1, at))
                    made += length
                    quota -= length

        _copy(
            "consent_consentevent",
            [
                "id",
                "receipt_id",
                "student_id",
                "employer_id",
                "purpose_id",
                "action",
                "occurred_at",
                "screen",
                "policy_version_id",
                "language",
                "actor",
                "reason",
                "collection_method",
                "ip_address",
                "user_agent",
            ],
            rows(),
            label="consent events",
            total=target,
        )
        _sync_sequence(ConsentEvent)
        _copy(
            "consent_consent",
            ["student_id", "employer_id", "purpose_id", "granted", "event_id", "updated_at"],
            iter(states),
            label="consents (state)",
            total=len(states),
        )

    def activity(self) -> None:
        """Activity records all from 2018-19: past RETENTION_ACTIVITY_DAYS, so the retention
        job has exactly this many expired rows to delete."""
        rng, target = self.rng, self.args.activity
        students = list(
            User.objects.filter(email__startswith="bulk-").values_list("pk", "date_joined")
        )
        employers = list(Employer.objects.values_list("pk", "name"))
        kinds = list(DEMO.activity.weights)
        weights = list(DEMO.activity.weights.values())
        cutoff = self.now - timedelta(days=settings.RETENTION_ACTIVITY_DAYS + 30)
        end = min(DEMO.history_end, cutoff)

        def rows():
            for n in range(target):
                student, joined = students[n % len(students)]
                kind = rng.choices(kinds, weights)[0]
                employer = (
                    rng.choice(employers)
                    if kind in DEMO.activity.company_kinds or rng.random() < 0.3
                    else (None, None)
                )
                yield (
                    student,
                    employer[0],
                    kind,
                    DEMO.activity.detail(rng, kind, employer[1]),
                    _time(rng, joined, max(end, joined + timedelta(days=1))),
                )

        _copy(
            "portal_activityrecord",
            ["student_id", "employer_id", "kind", "detail", "occurred_at"],
            rows(),
            label="activity records",
            total=target,
        )

    def requests(self) -> None:
        """Requests over the last two years: the older ones closed (completed, partly, or
        cancelled), the recent ones open, some with a company past the due date."""
        rng, target = self.rng, self.args.requests
        students = list(
            User.objects.filter(email__startswith="bulk-").values_list("pk", "language")
        )
        popular = list(Employer.objects.order_by("pk").values_list("pk", flat=True)[:38])
        task_id = _next_id(RecipientTask)
        request_id = _next_id(DataRequest)
        requests, tasks, events = [], [], []
        answers = {
            "disclosure": "disclosed",
            "deletion": "deleted",
            "cessation": "stopped",
        }
        for n in range(target):
            pk = request_id + n
            student, language = rng.choice(students)
            kind = rng.choices(("disclosure", "deletion", "cessation"), (50, 30, 20))[0]
            submitted = _time(rng, self.now - timedelta(days=730), self.now - timedelta(hours=1))
            due = submitted + timedelta(days=settings.REQUEST_DUE_DAYS)
            age = (self.now - submitted).days
            if age > 30:
                status = rng.choices(("completed", "partially_completed", "cancelled"), (85, 8, 7))[
                    0
                ]
            else:
                status = rng.choices(("in_progress", "submitted", "completed"), (70, 10, 20))[0]
            closed = status in ("completed", "partially_completed", "cancelled")
            completed = submitted + timedelta(days=rng.uniform(1, 13)) if closed else None
            requests.append(
                (
                    pk,
                    f"R-{submitted:%y%m%d}-{pk:010X}",
                    _uuid(rng),
                    student,
                    kind,
                    True,
                    "pdf_json",
                    "",
                    language,
                    status,
                    submitted,
                    due,
                    "",
                    submitted + timedelta(minutes=1) if status != "submitted" else None,
                    "{}",
                    completed,
                    "",
                )
            )
            events.append((pk, None, "submitted", submitted, "student"))
            for employer in rng.sample(popular, rng.choices((1, 2, 3), (50, 35, 15))[0]):
                sent = submitted + timedelta(minutes=2)
                if status == "submitted":
                    task_status, answer, answered = "queued", "", None
                elif status == "cancelled":
                    task_status, answer, answered = "closed", "", None
                elif closed or rng.random() < 0.4:
                    task_status, answered = "answered", sent + timedelta(days=rng.uniform(0, 12))
                    answer = (
                        "refused"
                        if status == "partially_completed" and rng.random() < 0.5
                        else answers[kind]
                    )
                    if completed is not None:
                        answered = min(answered, completed)
                else:
                    task_status, answer, answered = "sent", "", None
                overdue = task_status == "sent" and due < self.now
                tasks.append(
                    (
                        task_id,
                        pk,
                        employer,
                        "{}",
                        task_status,
                        submitted,
                        sent if task_status != "queued" else None,
                        min(2, age // 3) if task_status == "sent" else 0,
                        overdue,
                        due if overdue else None,
                        answer,
                        answered,
                        "人事部 個人情報担当" if answered else "",
                        "",
                        "link" if answered else "",
                        "",
                        answered or (sent if task_status != "queued" else submitted),
                    )
                )
                if task_status != "queued":
                    events.append((pk, task_id, "sent", sent, "system"))
                if answered:
                    events.append((pk, task_id, "answered", answered, "company"))
                task_id += 1
            if closed:
                events.append(
                    (pk, None, "cancelled" if status == "cancelled" else "completed", completed,
                     "staff" if status == "cancelled" else "system")
                )  # fmt: skip
        _copy(
            "disclosure_datarequest",
            [
                "id",
                "reference",
                "public_id",
                "student_id",
                "kind",
                "all_recipients",
                "delivery_format",
                "message",
                "language",
                "status",
                "submitted_at",
                "due_at",
                "extension_reason",
                "portal_done_at",
                "portal_summary",
                "completed_at",
                "cancel_reason",
            ],
            iter(requests),
            label="requests",
            total=len(requests),
        )
        _sync_sequence(DataRequest)
        _copy(
            "disclosure_recipienttask",
            [
                "id",
                "request_id",
                "employer_id",
                "reasons",
                "status",
                "created_at",
                "sent_at",
                "reminders_sent",
                "overdue",
                "escalated_at",
                "answer",
                "answered_at",
                "answered_by",
                "statement",
                "answered_via",
                "evidence",
                "changed_at",
            ],
            iter(tasks),
            label="company tasks",
            total=len(tasks),
        )
        _sync_sequence(RecipientTask)
        _copy(
            "disclosure_requestevent",
            ["request_id", "task_id", "kind", "at", "actor", "detail"],
            ((*row, "") for row in events),
            label="request events",
            total=len(events),
        )

    def audit(self) -> None:
        """Entries after the newest one, chained to it: `verify_audit_log` stays clean."""
        rng, target = self.rng, self.args.audit
        last = AuditEntry.objects.order_by("-seq").values("seq", "entry_hash").first()
        seq, prev = (last["seq"], last["entry_hash"]) if last else (0, GENESIS)
        start = self.now - timedelta(days=730)
        step = timedelta(days=729) / max(target, 1)
        names = [
            ("action", "disclosure.resend_answer_link", "disclosure.datarequest"),
            ("action", "disclosure.extend_due_date", "disclosure.datarequest"),
            ("change", "", "portal.employer"),
            ("login", "", "portal.user"),
            ("logout", "", "portal.user"),
            ("action", "consent.staff_consent_change", "portal.user"),
        ]

        def rows():
            nonlocal seq, prev
            for n in range(target):
                action, name, target_type = rng.choice(names)
                target_id = str(rng.randint(1, 100_000))
                entry = AuditEntry(
                    seq=seq + 1,
                    at=start + step * n,
                    actor_id=self.staff.pk,
                    actor_label=self.staff.email,
                    action=action,
                    name=name,
                    target_type=target_type,
                    target_id=target_id,
                    target_repr=f"{target_type} #{target_id}",
                    changes={"due_at": ["2026-01-01", "2026-01-15"]} if "extend" in name else {},
                    reason="電話で依頼を受けたため" if action == "action" else "",
                    ip=rng.choice(DEMO.activity.ip_addresses),
                    prev_hash=prev,
                )
                entry.entry_hash = entry_hash(entry)
                seq, prev = entry.seq, entry.entry_hash
                yield (
                    entry.seq,
                    entry.at,
                    entry.actor_id,
                    entry.actor_label,
                    entry.action,
                    entry.name,
                    entry.target_type,
                    entry.target_id,
                    entry.target_repr,
                    json.dumps(entry.changes),
                    entry.reason,
                    entry.ip,
                    entry.prev_hash,
                    entry.entry_hash,
                )

        _copy(
            "audit_auditentry",
            [*HASHED_FIELDS, "prev_hash", "entry_hash"],
            rows(),
            label="audit log",
            total=target,
        )

    def heavy(self) -> None:
        """One student with `--heavy-activity` recent activity records (inside the retention
        period, so the retention job keeps them), some grants and provisions, and an open
        disclosure request: the disclosure report's worst case."""
        rng = self.rng
        joined = self.now - timedelta(days=400)
        student = User.objects.create_user(
            HEAVY_EMAIL, DEMO.password, display_name="重井 多恵", date_joined=joined
        )
        PolicyAcceptance.objects.create(
            student=student,
            version=self.newest,
            accepted_at=joined + timedelta(minutes=5),
            screen="signup",
            language="ja",
            text_sha256=self.newest.text_sha256_ja,
        )
        employers = list(Employer.objects.order_by("pk")[:38])
        for employer in employers[:20]:
            event = ConsentEvent.objects.create(
                student=student,
                employer=employer,
                purpose=self.opt_in[0],
                action="grant",
                occurred_at=joined + timedelta(days=1),
                screen="consent_page",
                policy_version=self.newest,
                language="ja",
                actor="student",
            )
            Consent.objects.create(
                student=student,
                employer=employer,
                purpose=self.opt_in[0],
                granted=True,
                event=event,
                updated_at=event.occurred_at,
            )
            Provision.objects.create(
                student=student,
                employer=employer,
                purpose=self.opt_in[0],
                consent_event=event,
                data_items="閲覧履歴",
                provided_at=joined + timedelta(days=30),
            )
        kinds = list(DEMO.activity.weights)
        weights = list(DEMO.activity.weights.values())

        def rows():
            for _ in range(self.args.heavy_activity):
                kind = rng.choices(kinds, weights)[0]
                employer = rng.choice(employers) if kind in DEMO.activity.company_kinds else None
                yield (
                    student.pk,
                    employer.pk if employer else None,
                    kind,
                    DEMO.activity.detail(rng, kind, employer.name if employer else None),
                    _time(rng, joined, self.now - timedelta(days=1)),
                )

        _copy(
            "portal_activityrecord",
            ["student_id", "employer_id", "kind", "detail", "occurred_at"],
            rows(),
            label="heavy student activity",
            total=self.args.heavy_activity,
        )
        DataRequest.objects.create(
            reference="R-BENCH-HEAVY",
            student=student,
            kind="disclosure",
            language="ja",
            status="in_progress",
            due_at=self.now + timedelta(days=14),
        )


def _counts() -> dict[str, int]:
    cutoff = timezone.now() - timedelta(days=settings.RETENTION_ACTIVITY_DAYS)
    return {
        "students": User.objects.filter(email__startswith="bulk-").count(),
        "employers": Employer.objects.count(),
        "consent_events": ConsentEvent.objects.filter(student__email__startswith="bulk-").count(),
        "requests": DataRequest.objects.filter(student__email__startswith="bulk-").count(),
        "expired_activity": ActivityRecord.objects.filter(
            occurred_at__lt=cutoff, student__email__startswith="bulk-"
        ).count(),
        "heavy_activity": ActivityRecord.objects.filter(student__email=HEAVY_EMAIL).count(),
        "audit": AuditEntry.objects.count(),
    }


def load(args) -> float:
    """Load what is missing; returns the seconds it took (0 when everything was there)."""
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    counts = _counts()
    base = counts["students"] == args.students and counts["employers"] == args.employers
    base = base and counts["requests"] == args.requests and counts["audit"] >= args.audit
    base = base and counts["heavy_activity"] == args.heavy_activity
    base = base and counts["consent_events"] == args.consent_events
    if base and counts["expired_activity"] == args.activity:
        print("all the data is there already: measuring only", file=sys.stderr)
        return 0.0
    with connection.cursor() as cursor:
        # A benchmark's load: losing it in a crash costs a rerun, not data. The loader makes
        # every reference itself, so the per-row foreign-key triggers (five per consent
        # event, checked at commit) are skipped: they would triple the load's time.
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET session_replication_role = replica")
    if base:
        print("the expired activity records are missing (a retention run): loading them")
        ActivityRecord.objects.filter(student__email__startswith="bulk-").delete()
        Loader(args).activity()
    else:
        if counts["students"]:
            print(f"partial or different data ({counts}): starting over", file=sys.stderr)
            connection.close()
            _database_ensure(settings.DATABASE_URL, drop=True)
            call_command("migrate", verbosity=0)
        call_command("seed_demo", stdout=io.StringIO())
        loader = Loader(args)
        loader.employers()
        loader.students()
        loader.consent_events()
        loader.activity()
        loader.requests()
        loader.audit()
        loader.heavy()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        progress = Progress("VACUUM ANALYZE", 1)
        # Fresh statistics and visibility maps, as autovacuum would leave them in production.
        cursor.execute("VACUUM ANALYZE")
        progress.add()
        progress.close()
    elapsed = time.monotonic() - started
    print(f"loaded in {elapsed:.0f} s", file=sys.stderr)
    return elapsed


# --- measuring ------------------------------------------------------------------------------


class Report:
    """Prints each figure with its goal and ok/FAIL, and the plan of every slow query."""

    def __init__(self):
        self.failed: list[str] = []
        self.explained: set[str] = set()
        self.slow: list[tuple[str, float, str]] = []

    def line(self, name: str, figures: str, goal: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "FAIL")
        if ok is False:
            self.failed.append(name)
        print(f"{name:<46} {figures:<30} {goal:<18} {verdict}", flush=True)

    def timing(self, name: str, timings: list[float], goal_ms: float | None, extra: str = ""):
        ordered = sorted(timings)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        figures = f"p50 {p50:>6.0f} ms  p95 {p95:>6.0f} ms {extra}"
        goal = f"goal < {goal_ms:,.0f} ms" if goal_ms else ""
        self.line(name, figures, goal, None if goal_ms is None else p95 < goal_ms)

    def capture(self, name: str, queries: list[dict]) -> None:
        for query in queries:
            seconds = float(query["time"])
            if seconds > SLOW_QUERY:
                self.slow.append((name, seconds, query["sql"]))

    def explain_slow(self) -> None:
        for name, seconds, statement in self.slow:
            key = statement[:2000]
            if key in self.explained:
                continue
            self.explained.add(key)
            print(f"\n-- {name}: a query took {seconds * 1000:.0f} ms:\n{statement[:1500]}")
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                print("\n".join(row[0] for row in cursor.fetchall()))
        self.slow.clear()


def _page(report: Report, client: Client, name: str, url: str, *, repeat: int, goal_ms=500):
    """One warm-up request with its queries captured, then `repeat` timed ones."""
    reset_queries()  # the log holds 9,000 queries at most: a full one captures nothing
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    if response.status_code != 200:
        report.line(name, f"{url} answered {response.status_code}", "", False)
        return b""
    report.capture(name, captured.captured_queries)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        body = (
            b"".join(response.streaming_content)
            if hasattr(response, "streaming_content")
            else response.content
        )
        timings.append(time.perf_counter() - started)
    queries = len(captured.captured_queries)
    reset_queries()
    report.timing(name, timings, goal_ms, f"{queries:>3} q")
    return body


def admin_pages(report: Report, repeat: int, only: list[str] | None = None) -> None:
    staff = User.objects.get(email=DEMO.superuser.email)  # a superuser with a TOTP app
    client = Client()
    client.force_login(staff)
    bulk = User.objects.filter(email__startswith="bulk-").order_by("pk")
    student = bulk[bulk.count() // 2]
    heavy = User.objects.get(email=HEAVY_EMAIL)
    requests = DataRequest.objects.filter(student__email__startswith="bulk-").order_by("pk")
    request = requests[requests.count() // 2]
    popular = Employer.objects.order_by("pk").first()
    tail = Employer.objects.order_by("-pk").first()
    purpose = Purpose.objects.get(code="behaviour_analysis")

    def url(model, suffix="changelist", *args):
        return reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_{suffix}", args=args
        )

    pages = [
        ("dashboard", reverse("admin:index")),
        ("students", url(User)),
        ("students, search email", url(User) + f"?q={student.email}"),
        ("students, search name", url(User) + "?q=佐藤"),
        ("students, filter not staff", url(User) + "?is_staff__exact=0"),
        ("students, page 2", url(User) + "?p=2"),
        ("students, page 500", url(User) + "?p=500"),
        ("student page (heavy student)", url(User, "change", heavy.pk)),
        ("employers", url(Employer)),
        ("employers, search", url(Employer) + f"?q={tail.name}"),
        ("employers, page 100", url(Employer) + "?p=100"),
        ("consent events", url(ConsentEvent)),
        ("consent events, search student", url(ConsentEvent) + f"?q={student.email}"),
        ("consent events, filter withdraw", url(ConsentEvent) + "?action__exact=withdraw"),
        (
            "consent events, filter employer",
            url(ConsentEvent) + f"?employer__id__exact={popular.pk}",
        ),
        (
            "consent events, student's ledger",
            url(ConsentEvent) + f"?student__id__exact={student.pk}",
        ),
        ("consent events, page 2", url(ConsentEvent) + "?p=2"),
        ("consent events, page 1000", url(ConsentEvent) + "?p=1000"),
        ("consents (state)", url(Consent)),
        ("consents, filter granted", url(Consent) + "?granted__exact=1"),
        ("consents, search student", url(Consent) + f"?q={student.email}"),
        ("acceptances", url(PolicyAcceptance)),
        ("acceptances, page 2", url(PolicyAcceptance) + "?p=2"),
        ("activity records", url(ActivityRecord)),
        ("activity records, search student", url(ActivityRecord) + f"?q={student.email}"),
        ("activity records, filter kind", url(ActivityRecord) + "?kind__exact=application"),
        (
            "activity records, student's ledger",
            url(ActivityRecord) + f"?student__id__exact={heavy.pk}",
        ),
        ("activity records, page 2", url(ActivityRecord) + "?p=2"),
        ("activity records, page 1000", url(ActivityRecord) + "?p=1000"),
        ("requests", url(DataRequest)),
        ("requests, search reference", url(DataRequest) + f"?q={request.reference}"),
        ("requests, search student", url(DataRequest) + f"?q={request.student.email}"),
        ("requests, filter in progress", url(DataRequest) + "?status__exact=in_progress"),
        ("requests, filter overdue", url(DataRequest) + "?overdue=yes"),
        ("requests, page 2", url(DataRequest) + "?p=2"),
        ("requests, page 500", url(DataRequest) + "?p=500"),
        ("request page", url(DataRequest, "change", request.pk)),
        ("company tasks", url(RecipientTask)),
        ("company tasks, search reference", url(RecipientTask) + f"?q={request.reference}"),
        ("company tasks, filter overdue", url(RecipientTask) + "?overdue__exact=1"),
        ("company tasks, filter open", url(RecipientTask) + "?open=yes"),
        ("company tasks, page 2", url(RecipientTask) + "?p=2"),
        ("company tasks, page 500", url(RecipientTask) + "?p=500"),
        ("request events", url(RequestEvent)),
        ("request events, search reference", url(RequestEvent) + f"?q={request.reference}"),
        ("request events, page 2", url(RequestEvent) + "?p=2"),
        ("audit log", url(AuditEntry)),
        ("audit log, search", url(AuditEntry) + "?q=extend_due_date"),
        ("audit log, filter login", url(AuditEntry) + "?action__exact=login"),
        ("audit log, page 2", url(AuditEntry) + "?p=2"),
        ("audit log, page 500", url(AuditEntry) + "?p=500"),
        ("impact report", url(Purpose, "impact", purpose.pk)),
        (
            "impact report, page 2 of never-accepted",
            url(Purpose, "impact", purpose.pk) + "?never-accepted-page=2",
        ),
    ]
    if only:
        pages = [(name, address) for name, address in pages if any(w in name for w in only)]
    for name, address in pages:
        _page(report, client, f"admin {name}", address, repeat=repeat)
        report.explain_slow()
    for section in ("never-accepted", "unlisted") if not only or "CSV" in only else ():
        address = reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, section])
        body = _page(report, client, f"impact CSV {section}", address, repeat=1, goal_ms=10_000)
        report.explain_slow()
        lines = body.count(b"\n")
        print(f"{'':<46} ({lines:,} lines)")


def changes_feed(report: Report, repeat: int) -> None:
    from consent.api.keys import api_key_create
    from consent.models import ApiClient

    ApiClient.objects.filter(name__startswith="bench-scale", provisions=None).delete()
    _pipeline, pipeline_key = api_key_create(name="bench-scale pipeline")
    employer = Employer.objects.order_by("pk").first()
    _client, employer_key = api_key_create(name="bench-scale employer", employer=employer)
    client = Client()
    newest = ConsentEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    for name, key, since in (
        ("changes feed, pipeline, from the start", pipeline_key, 0),
        ("changes feed, pipeline, near the end", pipeline_key, max(0, newest - 5000)),
        ("changes feed, employer key, from start", employer_key, 0),
        ("changes feed, employer key, near end", employer_key, max(0, newest - 50_000)),
    ):
        address = reverse("api:consent_changes") + f"?since={since}&limit=1000"
        headers = {"Authorization": f"Bearer {key}"}
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(address, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{address} answered {response.status_code}: {response.content[:200]}")
        report.capture(name, captured.captured_queries)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(address, headers=headers)
            timings.append(time.perf_counter() - started)
        rows = len(response.json()["changes"])
        report.timing(name, timings, 200, f"{rows:>4} rows")
        report.explain_slow()


def consent_check(report: Report, requests: int) -> None:
    """As scripts/bench_api.py: 1,000 triples (half allowed) against the bare view, one
    gunicorn worker, interleaved over two keep-alive connections."""
    import http.client

    import bench_api

    from consent.api.keys import api_key_create

    rng = random.Random(SEED)  # noqa: S311 - a repeatable sample
    purpose = Purpose.objects.get(code="behaviour_analysis")
    granted = list(
        Consent.objects.filter(purpose=purpose, granted=True, student__email__startswith="bulk-")
        .order_by("pk")
        .values_list("student__public_id", "employer_id")[:200_000]
    )
    granted_set = set(granted)
    publics = list(
        User.objects.filter(email__startswith="bulk-").values_list("public_id", flat=True)
    )
    employers = list(Employer.objects.values_list("pk", flat=True))
    payloads = []
    for _ in range(8):
        triples = rng.sample(granted, 500)
        while len(triples) < 1000:
            candidate = (rng.choice(publics), rng.choice(employers))
            if candidate not in granted_set:
                triples.append(candidate)
        rng.shuffle(triples)
        checks = [{"student": str(s), "employer": e, "purpose": purpose.code} for s, e in triples]
        payloads.append(json.dumps({"checks": checks}).encode())
    _client, key = api_key_create(name="bench-scale check")
    connection.close()
    port = bench_api.free_port()
    server = bench_api.start_server(port)
    try:
        check = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        bare = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        plain = {"Content-Type": "application/json"}
        _elapsed, first = bench_api.timed_post(
            check, "/api/v1/consents/check", payloads[0], headers
        )
        allowed = sum(r["allowed"] for r in json.loads(first)["results"])
        if allowed != 500:
            raise SystemExit(f"expected 500 allowed in a batch, got {allowed}")
        check_times, bare_times = [], []
        for n in range(10 + requests):
            body = payloads[n % len(payloads)]
            check_time, _ = bench_api.timed_post(check, "/api/v1/consents/check", body, headers)
            bare_time, _ = bench_api.timed_post(bare, "/api/v1/_bench/bare", body, plain)
            if n >= 10:
                check_times.append(check_time)
                bare_times.append(bare_time)
    finally:
        server.terminate()
        server.wait(timeout=10)
    endpoint, yardstick = bench_api.summary(check_times), bench_api.summary(bare_times)
    ratio = endpoint[2] / yardstick[2]
    report.timing(
        "consent check, 1,000 triples (gunicorn)", check_times, 50, f"{endpoint[2]:>7,.0f}/s"
    )
    report.timing("bare JSON view, same payload", bare_times, None, f"{yardstick[2]:>7,.0f}/s")
    report.line("consent check / bare view, checks/s", f"{ratio:.2f}", "goal >= 0.50", ratio >= 0.5)


def disclosure_report(report: Report) -> None:
    from disclosure.reports import disclosure_report_data, disclosure_report_files

    request = DataRequest.objects.get(reference="R-BENCH-HEAVY")
    records = ActivityRecord.objects.filter(student=request.student).count()
    reset_queries()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        data = disclosure_report_data(request.student, request=request)
    gathered = time.perf_counter() - started
    report.capture("disclosure report data", captured.captured_queries)
    report.line(
        f"disclosure report data ({records:,} activity records)",
        f"{gathered * 1000:>6.0f} ms  {len(captured.captured_queries):>3} q",
        "goal < 2,000 ms",
        gathered < 2,
    )
    del data
    started = time.perf_counter()
    files = disclosure_report_files(request_id=request.pk)
    elapsed = time.perf_counter() - started
    sizes = ", ".join(
        f"{name.rsplit('.', 1)[-1]} {len(content) / 1e6:.1f} MB" for _k, name, _t, content in files
    )
    report.line("disclosure report files (PDF + JSON)", f"{elapsed:>6.1f} s  ({sizes})", "", None)
    report.explain_slow()


def retention(report: Report) -> None:
    from backoffice.retention import retention_run

    cutoff = timezone.now() - timedelta(days=settings.RETENTION_ACTIVITY_DAYS)
    expired = ActivityRecord.objects.filter(occurred_at__lt=cutoff).count()
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        counts = retention_run()
        elapsed = time.perf_counter() - started
    deleted = sum(counts.values())
    rate = deleted / elapsed
    report.line(
        f"retention job ({expired:,} expired activity records)",
        f"{elapsed:>6.1f} s  {rate:>9,.0f} rows/s",
        "goal > 50,000/s",
        rate > 50_000,
    )
    print(f"{'':<46} deleted {counts}; {len(captured.captured_queries):,} queries")
    left = ActivityRecord.objects.filter(occurred_at__lt=cutoff).count()
    kept = ActivityRecord.objects.filter(student__email=HEAVY_EMAIL).count()
    report.line(
        "retention left no expired row, kept the rest", f"{left} left, {kept:,} kept", "", left == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reload", action="store_true", help="drop the database, load again")
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--employers", type=int, default=30_000)
    parser.add_argument("--consent-events", type=int, default=1_000_000)
    parser.add_argument("--activity", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--heavy-activity", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per admin page")
    parser.add_argument("--api-requests", type=int, default=100)
    parser.add_argument(
        "--only",
        default="check,changes,admin,disclosure,retention",
        help="what to measure (comma-separated), default all",
    )
    parser.add_argument(
        "--pages",
        default="",
        help="admin pages whose name contains one of these words (comma-separated; 'CSV' for "
        "the impact CSVs), default all",
    )
    args = parser.parse_args()
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    settings.ALLOWED_HOSTS.append("testserver")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    loaded = load(args)
    # One connection for the whole run, as a web process with CONN_MAX_AGE keeps it, and a
    # query log that a request's start does not empty (CaptureQueriesContext reads it).
    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    with open("/proc/loadavg") as loadavg:
        machine = f"load average {' '.join(loadavg.read().split()[:3])}, {os.cpu_count()} CPUs"
    sizes = {
        "students": User.objects.filter(is_staff=False).count(),
        "employers": Employer.objects.count(),
        "consent events": ConsentEvent.objects.count(),
        "activity records": ActivityRecord.objects.count(),
        "requests": DataRequest.objects.count(),
        "company tasks": RecipientTask.objects.count(),
        "audit entries": AuditEntry.objects.count(),
    }
    print(
        f"\nPostgreSQL {connection.pg_version // 10000}, {settings.DATABASES['default']['NAME']}; "
        + ", ".join(f"{n:,} {what}" for what, n in sizes.items())
    )
    print(f"{machine}; load {'skipped (data present)' if not loaded else f'{loaded:.0f} s'}\n")
    report = Report()
    only = set(args.only.split(","))
    if "check" in only:
        consent_check(report, args.api_requests)
    if "changes" in only:
        changes_feed(report, args.repeat)
    if "admin" in only:
        admin_pages(report, args.repeat, [w for w in args.pages.split(",") if w])
    if "disclosure" in only:
        disclosure_report(report)
    if "retention" in only:
        retention(report)
    report.explain_slow()
    print(
        f"\n{len(report.failed)} goal(s) not met"
        + (f": {', '.join(report.failed)}" if report.failed else "")
    )


if __name__ == "__main__":
    main()
