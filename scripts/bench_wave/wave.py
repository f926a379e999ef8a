"""Parts 1 and 4: a wave on the daily digest, and one email per task."""

import email
import email.message
import email.policy
import multiprocessing
import smtplib
import statistics
import time
from collections import Counter
from pathlib import Path

import benchlib
from benchlib import REFERENCE, Report, file_deletion, start_beat, start_worker, stop
from django.conf import settings

from bench_wave.bootstrap import (
    ARGS,
)
from bench_wave.common import (
    DIGEST_GOAL,
    PROGRESS_EVERY,
    RAW_SMTP_TO,
    SWEEP_SECONDS,
    WAVE_GOAL,
    WaveSink,
    note,
    wait,
)
from bench_wave.seeding import (
    Seed,
)
from disclosure.models import (
    CompanyDigest,
    DigestItem,
    RecipientTask,
)
from portal.models import EmailMessage, Employer
from tests.faults.flows import advance
from tests.faults.harness import PrivateRedis


def kinds_received(arrivals, addresses: set[str]) -> dict[str, Counter]:
    """For each address, how many emails of each kind ("company_digest", "request_received"
    ...) it received, told apart by the stored rows' subjects (tests/faults/harness.py
    `mails_by_kind` does the same for whole messages)."""
    kind_of = {
        (to, " ".join(subject.split())): kind.split(":")[0]
        for to, subject, kind in EmailMessage.objects.filter(to__in=addresses).values_list(
            "to", "subject", "kind"
        )
    }
    received = {address: Counter() for address in addresses}
    for _at, to, subject in arrivals:
        if to in received:
            received[to][kind_of.get((to, subject), f"? {subject}")] += 1
    return received


def each_once(received: dict[str, Counter], kind: str) -> int:
    return sum(counts[kind] == 1 for counts in received.values())


def digest_email(raw: bytes) -> tuple[int | None, list[str]]:
    """The count a digest email gives for its new requests, and the references it lists."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    headers = [line for line in text.splitlines() if line.startswith("== ")]
    count = None
    if headers:
        digits = "".join(c for c in headers[0] if c.isdigit())
        count = int(digits) if digits else None
    listed = [
        line[2:].split(" ")[0] for line in text.splitlines() if REFERENCE.match(line[2:] or "")
    ]
    return count, listed


def raw_smtp(sink: WaveSink, sample: EmailMessage, count: int, processes: int = 2) -> float:
    """Seconds for smtplib to hand `count` messages like `sample` to the sink from
    `processes` processes, each over one connection (as a worker process keeps one)."""
    message = email.message.EmailMessage()
    message["From"] = settings.DEFAULT_FROM_EMAIL
    message["To"] = RAW_SMTP_TO
    message["Subject"] = sample.subject
    message.set_content(sample.body_text)
    if sample.body_html:
        message.add_alternative(sample.body_html, subtype="html")
    context = multiprocessing.get_context("fork")
    shares = [count // processes + (n < count % processes) for n in range(processes)]
    senders = [
        context.Process(target=_send_raw, args=(sink.host, sink.port, message, share))
        for share in shares
    ]
    started = time.perf_counter()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    elapsed = time.perf_counter() - started
    if any(sender.exitcode for sender in senders):
        raise RuntimeError("a raw SMTP sender failed")
    return elapsed


def _send_raw(host: str, port: int, message, count: int) -> None:
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        for _ in range(count):
            smtp.send_message(message)


class Wave:
    """N students filing a deletion to every one of the companies while the worker
    dispatches; `delivery` says how the companies are told."""

    def __init__(self, seed: Seed, report: Report, *, delivery: str, label: str, logs: Path):
        self.report, self.label = report, label
        self.digest = delivery == Employer.Delivery.DAILY
        self.logs = logs
        started = time.monotonic()
        self.employers = seed.companies(ARGS.companies, label=label, delivery=delivery)
        self.students = seed.students(ARGS.students, label=label, employers=self.employers)
        self.companies = {e.primary_contact.email for e in self.employers}
        self.addresses = {s.email for s in self.students}
        self.total = len(self.students) * len(self.employers)
        note(
            f"{len(self.students):,} students, {len(self.employers)} companies, "
            f"{self.total:,} grants and provisions made in {time.monotonic() - started:.0f} s"
        )

    def tasks(self):
        return RecipientTask.objects.filter(employer__in=self.employers)

    def run(self, broker: PrivateRedis) -> None:
        with WaveSink() as sink:
            if self.digest:
                sink.keep = self.companies
            worker = start_worker(
                sink, self.logs / f"worker-{self.label}.log", pool="prefork", concurrency=2
            )
            beat = None
            try:
                filed = self.file(sink, broker, worker)
                if self.digest:
                    beat = self.digests(sink, broker, worker, filed)
                else:
                    self.emails(sink, broker, worker, filed)
                self.receipts(sink, worker)
                time.sleep(ARGS.settle)  # anything sent twice arrives now
            finally:
                for process in (beat, worker):
                    if process is not None:
                        stop(process)
            self.count(sink)
            if not self.digest:
                self.baseline(sink)

    def file(self, sink: WaveSink, broker: PrivateRedis, worker) -> float:
        durations = []
        shown = started = time.perf_counter()
        for n, student in enumerate(self.students, 1):
            before = time.perf_counter()
            file_deletion(student)
            durations.append(time.perf_counter() - before)
            if time.perf_counter() - shown > PROGRESS_EVERY:
                shown = time.perf_counter()
                note(f"filed {n:,}/{len(self.students):,}; {self.progress(sink, broker)}")
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode}) during filing")
        elapsed = time.perf_counter() - started
        count = len(durations)
        p50 = statistics.median(durations) * 1000
        self.report.line(
            f"filing {count:,} deletions x {len(self.employers)} companies",
            f"{elapsed:,.1f} s, {count / elapsed:,.1f}/s, p50 {p50:,.0f} ms",
            "issue 20: >= 30/s, p50 < 30 ms",
            count / elapsed >= 30 and p50 < 30,
        )
        return started

    def progress(self, sink: WaveSink, broker: PrivateRedis) -> str:
        claimed = self.tasks().exclude(status=RecipientTask.Status.QUEUED).count()
        return (
            f"{claimed:,}/{self.total:,} tasks claimed, {sink.count_to(self.companies):,} "
            f"company and {sink.count_to(self.addresses):,} student emails at the sink, "
            f"queue {broker.queue_length():,}"
        )

    def digests(self, sink: WaveSink, broker: PrivateRedis, worker, started: float):
        queued = self.tasks().filter(status=RecipientTask.Status.QUEUED)
        claimed = wait(
            lambda: not queued.exists(),
            "claiming the tasks for the digest",
            timeout=ARGS.timeout,
            progress=lambda: self.progress(sink, broker),
            processes=(worker,),
        )
        at = time.perf_counter()
        self.report.line(
            f"{self.total:,} tasks claimed for the digest",
            f"{at - started:,.1f} s from the first filing, {self.total / (at - started):,.0f}/s"
            if claimed
            else f"{self.total - queued.count():,} of {self.total:,} in {ARGS.timeout:.0f} s",
            "",
            None if claimed else False,
        )
        advance(days=1)  # a day passes: the tasks arrived before 09:00
        beat = start_beat(
            self.logs / f"beat-{self.label}.log",
            benchlib.celery_env(
                sink, REQUESTS_SWEEP_SECONDS=SWEEP_SECONDS, EMAIL_SWEEP_SECONDS=SWEEP_SECONDS
            ),
        )
        due = time.perf_counter()
        every = wait(
            lambda: self.told(sink) == len(self.companies),
            "digests",
            timeout=ARGS.timeout,
            progress=lambda: (
                f"{CompanyDigest.objects.filter(employer__in=self.employers).count()} digests "
                f"made, {self.told(sink)} companies have their email"
            ),
            processes=(worker, beat),
        )
        arrived = [at for at, to, _s in sink.snapshot() if to in self.companies]
        last = max(arrived, default=time.perf_counter())
        self.report.line(
            f"every company has its digest ({len(self.employers)})",
            f"{last - due:,.1f} s after 09:00, {last - started:,.0f} s from the first filing"
            if every
            else f"{self.told(sink)} of {len(self.companies)} in {ARGS.timeout:.0f} s",
            f"< {DIGEST_GOAL} s (bench's own)",
            every and last - due < DIGEST_GOAL,
        )
        return beat

    def told(self, sink: WaveSink) -> int:
        """How many of the companies have an email."""
        return sink.reached(self.companies)

    def emails(self, sink: WaveSink, broker: PrivateRedis, worker, started: float) -> None:
        every = wait(
            lambda: sink.count_to(self.companies) >= self.total,
            "company emails",
            timeout=ARGS.timeout,
            progress=lambda: self.progress(sink, broker),
            processes=(worker,),
        )
        arrived = [at for at, to, _s in sink.snapshot() if to in self.companies]
        last = max(arrived, default=time.perf_counter())
        self.elapsed = last - started
        goal = WAVE_GOAL * self.total / (2000 * 38)
        rate = 2000 * 38 / WAVE_GOAL
        self.report.line(
            f"every company has every email ({self.total:,})",
            f"{self.elapsed:,.1f} s from the first filing, {len(arrived) / self.elapsed:,.1f}/s"
            if every
            else f"{len(arrived):,} of {self.total:,} in {ARGS.timeout:.0f} s",
            "< 15 min" if self.total == 2000 * 38 else f">= {rate:.0f}/s (15 min at 2,000 x 38)",
            every and self.elapsed < goal,
        )

    def receipts(self, sink: WaveSink, worker) -> None:
        # Each filing emails its student once: "request received", with the receipts of the
        # consents it withdrew.
        wait(
            lambda: sink.count_to(self.addresses) >= len(self.students),
            "student receipts",
            timeout=ARGS.timeout,
            progress=lambda: f"{sink.count_to(self.addresses):,} of {len(self.students):,}",
            processes=(worker,),
        )

    def count(self, sink: WaveSink) -> None:
        arrivals = sink.snapshot()
        companies = kinds_received(arrivals, self.companies)
        students = kinds_received(arrivals, self.addresses)
        n, c = len(self.students), len(self.employers)
        per_company = Counter()
        for counts in companies.values():
            per_company.update(counts)
        told = "company_digest" if self.digest else "company_request"
        expected = 1 if self.digest else n
        exact = sum(counts[told] == expected for counts in companies.values())
        others = {kind: k for kind, k in per_company.items() if kind != told}
        self.report.line(
            "emails each company received",
            f"{expected:,} {told} at {exact}/{c}; other kinds: "
            + (", ".join(f"{kind} {k}" for kind, k in others.items()) or "none"),
            f"{expected:,} {'digest' if self.digest else 'each'}, nothing else",
            exact == c and not others,
        )
        received = each_once(students, "request_received")
        exact = sum(counts == Counter(request_received=1) for counts in students.values())
        self.report.line(
            "student receipts",
            f"1 request_received (its withdrawals' receipts in it) at {received:,}/{n:,}, "
            f"nothing else at {exact:,}/{n:,}",
            "1 each",
            received == exact == n,
        )
        if self.digest:
            lost, duplicated, why_lost, why_duplicated = self.digest_accounting(sink)
        else:
            lost, duplicated, why_lost, why_duplicated = self.email_accounting(arrivals)
        self.report.line("lost", f"{lost:,} {why_lost}", "0", lost == 0)
        self.report.line("duplicated", f"{duplicated:,} {why_duplicated}", "0", duplicated == 0)

    def digest_accounting(self, sink: WaveSink) -> tuple[int, int, str, str]:
        """Every task in exactly one digest (its DigestItem), and told once by the email its
        company received: counted there (the email lists its first 100 rows, each of which
        must be one of the company's own, once)."""
        tasks = dict(self.tasks().values_list("pk", "employer_id"))
        items = Counter(
            DigestItem.objects.filter(task_id__in=tasks, reason=DigestItem.Reason.NEW).values_list(
                "task_id", flat=True
            )
        )
        own: dict[int, set[str]] = {}
        for reference, employer_id in self.tasks().values_list("request__reference", "employer_id"):
            own.setdefault(employer_id, set()).add(reference)
        uncounted = overcounted = wrong_rows = 0
        for employer in self.employers:
            kept = sink.kept.get(employer.primary_contact.email, [])
            emails = [digest_email(raw) for raw in kept]
            told = sum(count or 0 for count, _listed in emails)
            uncounted += max(0, len(own[employer.pk]) - told)
            overcounted += max(0, told - len(own[employer.pk]))
            listed = [reference for _count, rows in emails for reference in rows]
            wrong_rows += len(listed) - len(set(listed) & own[employer.pk])
        in_none = sum(1 for pk in tasks if items[pk] == 0)
        in_two = sum(n - 1 for n in items.values() if n > 1)
        return (
            in_none + uncounted,
            in_two + overcounted + wrong_rows,
            f"(in no digest {in_none}, not counted in its email {uncounted})",
            f"(in two digests {in_two}, counted twice {overcounted}, rows listed twice or "
            f"to another company {wrong_rows})",
        )

    def email_accounting(self, arrivals) -> tuple[int, int, str, str]:
        """Every task's email at its company's address, once, by the reference in its
        subject."""
        expected = set(self.tasks().values_list("employer__contacts__email", "request__reference"))
        received = Counter()
        for _at, to, subject in arrivals:
            found = REFERENCE.search(subject)
            if to in self.companies and found:
                received[(to, found.group())] += 1
        lost = len(expected - set(received))
        duplicated = sum(n - 1 for n in received.values() if n > 1)
        stray = len(set(received) - expected)
        return (
            lost,
            duplicated + stray,
            "(tasks with no email at their company)",
            f"(a task's email twice {duplicated}, to another company {stray})",
        )

    def baseline(self, sink: WaveSink) -> None:
        sample = EmailMessage.objects.filter(kind__startswith="company_request:").first()
        elapsed = raw_smtp(sink, sample, self.total)
        got = sink.count_to({RAW_SMTP_TO})
        raw_rate, rate = got / elapsed, self.total / self.elapsed
        self.report.line(
            f"raw smtplib: {self.total:,} like messages",
            f"{elapsed:,.1f} s, {raw_rate:,.0f}/s (2 processes)",
            "",
            None if got == self.total else False,
        )
        self.report.line(
            "wave / raw SMTP rate",
            f"{rate:,.1f}/s / {raw_rate:,.0f}/s = {rate / raw_rate:.2f}",
            "issue 20: >= 0.5",
            rate / raw_rate >= 0.5,
        )
