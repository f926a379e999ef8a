"""scripts/bench_dispatch.py's data: its companies and students, each student's grants and
provisions (bulk-loaded, as consent_grant and provision_record make them), filing and
cancelling its requests (filing itself: benchlib.file_deletion). Imported by it once
Django is set up."""

from django.db import transaction
from django.utils import timezone

from consent.models import (
    Consent,
    ConsentEvent,
    ConsentScreen,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
    Screen,
)
from consent.services import policy_accept
from disclosure.models import DataRequest
from disclosure.services import request_cancel
from portal.models import Employer, PrivacyContact, User

BENCH_DOMAIN = "bench.example.jp"
COMPANY_EMAIL = "privacy-{:03d}@" + BENCH_DOMAIN
CANCEL_REASON = "benchmark run finished (scripts/bench_dispatch.py)"


def bench_companies(count: int) -> list[Employer]:
    companies = []
    for n in range(1, count + 1):
        email = COMPANY_EMAIL.format(n)
        employer = (
            Employer.objects.filter(contacts__email=email, contacts__is_primary=True)
            .order_by("pk")
            .first()
        )
        if employer is None:
            employer = Employer.objects.create(
                name=f"ベンチ株式会社{n:03d}", name_en=f"Bench Corporation {n:03d}"
            )
            PrivacyContact.objects.create(
                employer=employer, name="個人情報担当", email=email, is_primary=True
            )
        companies.append(employer)
    # Each request by its own email, whatever an earlier run or a person set: what is measured.
    Employer.objects.filter(pk__in=[e.pk for e in companies]).update(
        request_delivery=Employer.Delivery.EACH
    )
    return companies


def bench_students(emails: list[str]) -> list[User]:
    found = {u.email: u for u in User.objects.filter(email__in=emails)}
    with transaction.atomic():
        for email in emails:
            if email not in found:
                found[email] = User.objects.create_user(
                    email=email, display_name="ベンチ 学生", language="ja"
                )
    return [found[email] for email in emails]


def ensure_recipients(
    pairs: list[tuple[User, Employer]], version: PolicyVersion, purpose: Purpose
) -> None:
    """Each student accepted `version`, holds a live grant for each of its employers and the
    employer received its data (a provision). The grants and provisions are the rows
    `consent_grant` and `provision_record` make, bulk-loaded: a deletion withdraws the
    grants, and every run grants them again (thousands), to file the same requests."""
    students = {s.pk: s for s, _e in pairs}
    accepted = set(
        PolicyAcceptance.objects.filter(student_id__in=students, version=version).values_list(
            "student_id", flat=True
        )
    )
    for student in students.values():
        if student.pk not in accepted:
            policy_accept(
                student=student,
                version=version,
                screen=Screen.SIGNUP,
                language=student.language,
                shown_sha256=version.stored_sha256(student.language),
            )
    states = {
        (c.student_id, c.employer_id): c
        for c in Consent.objects.filter(student_id__in=students, purpose=purpose)
    }
    provided = set(
        Provision.objects.filter(student_id__in=students, purpose=purpose).values_list(
            "student_id", "employer_id"
        )
    )
    now = timezone.now()
    wanted = [(s, e) for s, e in pairs if not getattr(states.get((s.pk, e.pk)), "granted", False)]
    with transaction.atomic():
        events = ConsentEvent.objects.bulk_create(
            ConsentEvent(
                student=student,
                employer=employer,
                purpose=purpose,
                action=ConsentEvent.Action.GRANT,
                occurred_at=now,
                screen=ConsentScreen.CONSENT_PAGE,
                policy_version=version,
                language=student.language,
                actor=ConsentEvent.Actor.STUDENT,
                collection_method="web form: one button per employer and purpose",
            )
            for student, employer in wanted
        )
        new_states, changed = [], []
        for event in events:
            state = states.get((event.student_id, event.employer_id))
            if state is None:
                new_states.append(
                    Consent(
                        student_id=event.student_id,
                        employer_id=event.employer_id,
                        purpose=purpose,
                        granted=True,
                        event=event,
                        updated_at=now,
                    )
                )
            else:
                state.granted, state.event, state.updated_at = True, event, now
                changed.append(state)
        Consent.objects.bulk_create(new_states, batch_size=2000)
        Consent.objects.bulk_update(changed, ["granted", "event", "updated_at"], batch_size=500)
        by_pair = {(e.student_id, e.employer_id): e for e in events}
        Provision.objects.bulk_create(
            (
                Provision(
                    student_id=student_id,
                    employer_id=employer_id,
                    purpose=purpose,
                    consent_event=event,
                    data_items="行動履歴の分析結果（関心度スコア）",
                    provided_at=now,
                )
                for (student_id, employer_id), event in by_pair.items()
                if (student_id, employer_id) not in provided
            ),
            batch_size=2000,
        )


def cancel_open() -> int:
    cancelled = 0
    for request in DataRequest.objects.filter(
        student__email__endswith="@" + BENCH_DOMAIN, status__in=DataRequest.OPEN
    ).select_related("student"):
        request_cancel(request=request, reason=CANCEL_REASON)
        cancelled += 1
    return cancelled
