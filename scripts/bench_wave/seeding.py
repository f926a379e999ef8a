"""The students, companies, contacts, grants and provisions a wave needs, made in bulk."""

import random
from datetime import date, datetime, timedelta
from datetime import time as dt_time

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from bench_wave.common import (
    DEMO,
    DOMAIN,
    SEED,
)
from consent.models import (
    Consent,
    ConsentEvent,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
)
from demo.seed import Seeder
from disclosure.models import (
    DataRequest,
    RecipientTask,
)
from portal.models import Employer, PrivacyContact, User


class Seed:
    """The policy, purposes and staff (demo/ makes them), and what every bench row uses."""

    def __init__(self) -> None:
        seeder = Seeder(DEMO)
        seeder.seed_purposes()
        seeder.seed_staff()  # the policy versions name who published them
        seeder.seed_versions()
        self.version = PolicyVersion.objects.current()
        self.purpose = Purpose.objects.get(code="provision_to_employer")
        self.password = make_password(None)  # unusable: nobody signs in as a bench student
        self.rng = random.Random(SEED)  # noqa: S311 - repeatable data, not a secret

    def name(self) -> str:
        return f"{self.rng.choice(DEMO.bulk.surnames)} {self.rng.choice(DEMO.bulk.given_names)}"

    def companies(self, count: int, *, label: str, delivery: str) -> list[Employer]:
        employers = Employer.objects.bulk_create(
            Employer(
                name=f"ベンチ{label}株式会社{n:03d}",
                name_en=f"Bench {label} Corporation {n:03d}",
                request_delivery=delivery,
            )
            for n in range(1, count + 1)
        )
        PrivacyContact.objects.bulk_create(
            PrivacyContact(
                employer=employer,
                name="個人情報担当",
                email=f"privacy-{label}-{n:03d}@{DOMAIN}",
                language="ja" if n % 2 else "en",
                is_primary=True,
            )
            for n, employer in enumerate(employers, 1)
        )
        return list(Employer.objects.filter(pk__in=[e.pk for e in employers]).order_by("pk"))

    def students(self, count: int, *, label: str, employers: list[Employer]) -> list[User]:
        """Students who accepted the current version, granted `provision_to_employer` to
        every employer, and whose data each employer received: bulk_create, no emails."""
        now = timezone.now()
        joined = now - timedelta(days=400)
        students = User.objects.bulk_create(
            (
                User(
                    email=f"wave-{label}-{n:05d}@{DOMAIN}",
                    display_name=self.name(),
                    password=self.password,
                    language="en" if n % 20 == 0 else "ja",
                    date_joined=joined,
                )
                for n in range(1, count + 1)
            ),
            batch_size=2000,
        )
        PolicyAcceptance.objects.bulk_create(
            (
                PolicyAcceptance(
                    student=student,
                    version=self.version,
                    accepted_at=joined + timedelta(minutes=5),
                    screen="signup",
                    language=student.language,
                    text_sha256=self.version.stored_sha256(student.language),
                )
                for student in students
            ),
            batch_size=2000,
        )
        self.grants_and_provisions(
            [(student, employer) for student in students for employer in employers],
            at=joined + timedelta(days=30),
        )
        return students

    def grants_and_provisions(self, pairs: list[tuple[User, Employer]], *, at) -> None:
        events = ConsentEvent.objects.bulk_create(
            (
                ConsentEvent(
                    student=student,
                    employer=employer,
                    purpose=self.purpose,
                    action="grant",
                    occurred_at=at,
                    screen="consent_page",
                    policy_version=self.version,
                    language=student.language,
                    actor="student",
                    collection_method="web form: per-employer switch",
                )
                for student, employer in pairs
            ),
            batch_size=5000,
        )
        Consent.objects.bulk_create(
            (
                Consent(
                    student_id=event.student_id,
                    employer_id=event.employer_id,
                    purpose=self.purpose,
                    granted=True,
                    event=event,
                    updated_at=at,
                )
                for event in events
            ),
            batch_size=5000,
        )
        Provision.objects.bulk_create(
            (
                Provision(
                    student_id=event.student_id,
                    employer_id=event.employer_id,
                    purpose=self.purpose,
                    consent_event=event,
                    data_items="行動履歴の分析結果（内定辞退率スコア）",
                    provided_at=at + timedelta(days=10),
                    first_provided_at=at + timedelta(days=1),
                )
                for event in events
            ),
            batch_size=5000,
        )

    def workspace_company(self, tasks: int, bulk: int) -> tuple[Employer, PrivacyContact, date]:
        """One company with `tasks` open tasks, one request (one student) each: `bulk`
        deletions filed yesterday (the bulk answer's filter), the rest of every kind filed 3,
        8, 16 and 20 days ago (the last two past due). Returns the company, its contact and
        yesterday's date."""
        [employer] = self.companies(1, label="workspace", delivery=Employer.Delivery.DAILY)
        contact = employer.primary_contact
        now = timezone.now()
        students = User.objects.bulk_create(
            (
                User(
                    email=f"ws-{n:05d}@{DOMAIN}",
                    display_name=self.name(),
                    password=self.password,
                    language="ja",
                    date_joined=now - timedelta(days=400),
                )
                for n in range(1, tasks + 1)
            ),
            batch_size=2000,
        )
        self.grants_and_provisions(
            [(student, employer) for student in students], at=now - timedelta(days=300)
        )
        yesterday = timezone.localdate() - timedelta(days=1)
        noon = timezone.make_aware(datetime.combine(yesterday, dt_time(12)))
        requests, kinds = [], ("deletion",) * 5 + ("disclosure",) * 3 + ("cessation",) * 2
        for n, student in enumerate(students):
            if n < bulk:
                kind, filed = "deletion", noon
            else:
                kind, filed = self.rng.choice(kinds), now - timedelta(days=(3, 8, 16, 20)[n % 4])
            submitted = filed - timedelta(seconds=self.rng.randint(0, 3600))
            requests.append(
                DataRequest(
                    reference=f"R-{timezone.localtime(submitted):%y%m%d}-{0xB000000000 + n:010X}",
                    student=student,
                    kind=kind,
                    language="ja",
                    status=DataRequest.Status.IN_PROGRESS,
                    submitted_at=submitted,
                    due_at=submitted + timedelta(days=settings.REQUEST_DUE_DAYS),
                    portal_done_at=submitted + timedelta(seconds=1),
                )
            )
        requests = DataRequest.objects.bulk_create(requests, batch_size=2000)
        RecipientTask.objects.bulk_create(
            (
                RecipientTask(
                    request=request,
                    employer=employer,
                    status=RecipientTask.Status.SENT,
                    created_at=request.submitted_at,
                    sent_at=request.submitted_at + timedelta(minutes=2),
                    changed_at=request.submitted_at + timedelta(minutes=2),
                    reasons={"provisions": 1, "live_grant": True},
                )
                for request in requests
            ),
            batch_size=2000,
        )
        return employer, contact, yesterday
