"""Loading the ledgers: activity records, requests (with their company tasks and timelines),
the audit log, and the heavy student."""

import json
from datetime import timedelta

from django.conf import settings

from audit.log import GENESIS, HASHED_FIELDS, entry_hash
from audit.models import AuditEntry
from bench_scale.common import DEMO, HEAVY_EMAIL
from bench_scale.copying import copy_rows, next_id, random_time, random_uuid, sync_sequence
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Provision
from disclosure.models import DataRequest, RecipientTask
from portal.models import Employer, User


class LedgerLoader:
    """The ledgers' part of `bench_scale.loading.Loader` (its state: `PeopleLoader.__init__`)."""

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
                    random_time(rng, joined, max(end, joined + timedelta(days=1))),
                )

        copy_rows(
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
        task_id = next_id(RecipientTask)
        request_id = next_id(DataRequest)
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
            submitted = random_time(
                rng, self.now - timedelta(days=730), self.now - timedelta(hours=1)
            )
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
                    random_uuid(rng),
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
                        # What GET /api/v1/requests orders by: the last thing that happened.
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
        copy_rows(
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
        sync_sequence(DataRequest)
        copy_rows(
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
        sync_sequence(RecipientTask)
        copy_rows(
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

        copy_rows(
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
                    random_time(rng, joined, self.now - timedelta(days=1)),
                )

        copy_rows(
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
