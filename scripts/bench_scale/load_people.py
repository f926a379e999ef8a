"""Loading the people: employers (with a privacy contact each), students (with their email
addresses and acceptances), and the consent events with the states they lead to."""

import random
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from bench_scale.common import BENCH_EMPLOYER, DEMO, SEED
from bench_scale.copying import copy_rows, next_id, random_time, random_uuid, sync_sequence
from consent.models import ConsentEvent, PolicyVersion, Purpose
from portal.models import Employer, User, corporate_number_check_digit


class PeopleLoader:
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
        start = next_id(Employer)
        ids = range(start, start + max(wanted, 0))
        created = self.now - timedelta(days=900)
        copy_rows(
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
        sync_sequence(Employer)
        copy_rows(
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
        start = next_id(User)
        self.student_ids = list(range(start, start + count))
        joined = {}

        def users():
            for n, pk in enumerate(self.student_ids, 1):
                at = random_time(rng, DEMO.history_start, DEMO.history_end)
                joined[pk] = at
                yield (
                    pk,
                    password,
                    False,
                    DEMO.bulk.email.format(n),
                    f"{rng.choice(DEMO.bulk.surnames)} {rng.choice(DEMO.bulk.given_names)}",
                    random_uuid(rng),
                    "en" if rng.random() < 0.05 else "ja",
                    False,
                    True,
                    at,
                )

        copy_rows(
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
        sync_sequence(User)
        copy_rows(
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
                        random_uuid(rng),
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

        copy_rows(
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
        start = next_id(ConsentEvent)
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
                            random_uuid(rng),
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

        copy_rows(
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
        sync_sequence(ConsentEvent)
        copy_rows(
            "consent_consent",
            ["student_id", "employer_id", "purpose_id", "granted", "event_id", "updated_at"],
            iter(states),
            label="consents (state)",
            total=len(states),
        )
