"""What the demo draws at random, from the data's parameters and one seed.

Pure functions: the same data and seed give the same plans and rows on every run. The order
of the draws is part of the data set; changing it changes every filler and bulk student.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from consent.models import PolicyAcceptance, PolicyVersion, Screen
from demo.specs import Demo, Filler, Version
from portal.models import ActivityRecord, Employer, Language, User

KINDS = ActivityRecord.Kind.values  # the draw's order: the model's, checked against the data


@dataclass(frozen=True)
class PlannedAcceptance:
    label: str
    screen: str
    at: datetime


@dataclass(frozen=True)
class StudentPlan:
    email: str
    display_name: str
    language: str
    joined: datetime
    acceptances: tuple[PlannedAcceptance, ...]
    activity_count: int


def random_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = (end - start).total_seconds()
    return start + timedelta(seconds=int(rng.random() * max(span, 0)))


def story_plans(demo: Demo) -> list[StudentPlan]:
    """The stories' own students: nothing drawn, everything as written."""
    return [
        StudentPlan(
            email=story.student.email,
            display_name=story.student.display_name,
            language=story.student.language,
            joined=story.student.joined,
            acceptances=tuple(
                PlannedAcceptance(a.version, a.screen, a.at) for a in story.acceptances
            ),
            activity_count=story.student.activity,
        )
        for story in demo.stories
        if story.student
    ]


def filler_plans(rng: random.Random, demo: Demo) -> list[StudentPlan]:
    """Who joined when and accepted what (students.toml's groups), drawn in list order."""
    filler: Filler = demo.filler
    versions: list[Version] = list(demo.policy.versions)
    order = {v.label: n for n, v in enumerate(versions)}
    effective = {v.label: v.effective_at for v in versions}
    plans = []
    for index, student in enumerate(filler.students):
        group = filler.groups[index % len(filler.groups)]
        joined = random_time(rng, demo.history_start, group.joined_before)
        signed_up = joined + timedelta(minutes=rng.randint(*filler.signup_after_minutes))
        in_force = [v for v in versions if v.effective_at <= joined]
        first = in_force[-1] if in_force else versions[0]  # signs up on it
        accepted = [PlannedAcceptance(first.label, Screen.SIGNUP, signed_up)]
        for step in group.accepts:
            if order[step.version] <= order[first.label]:
                continue  # in force when they joined, or before
            # One screen is no draw: a choice among one would still use the generator.
            screen = step.screens[0] if len(step.screens) == 1 else rng.choice(step.screens)
            start = max(effective[step.version], accepted[-1].at)
            start += timedelta(hours=filler.accept_after_hours)
            accepted.append(
                PlannedAcceptance(step.version, screen, random_time(rng, start, step.before))
            )
        plans.append(
            StudentPlan(
                email=student.email,
                display_name=student.name,
                language=student.language,
                joined=joined,
                acceptances=tuple(accepted),
                activity_count=rng.randint(*filler.activity),
            )
        )
    return plans


def activity_records(
    rng: random.Random,
    demo: Demo,
    student_id: int,
    joined: datetime,
    count: int,
    employers: list[Employer],
) -> list[ActivityRecord]:
    """`count` records from `joined` to the end of the story (activity.toml)."""
    activity = demo.activity
    weights = [activity.kinds[kind].weight for kind in KINDS]
    records = []
    for kind in rng.choices(KINDS, weights, k=count):
        employer = None
        if activity.kinds[kind].about_company or rng.random() < activity.company_share:
            employer = rng.choice(employers)
        records.append(
            ActivityRecord(
                student_id=student_id,
                employer_id=employer.pk if employer else None,
                kind=kind,
                detail=activity.detail(rng, kind, employer.name if employer else None),
                occurred_at=random_time(rng, joined, demo.history_end),
            )
        )
    return records


def bulk_user(rng: random.Random, demo: Demo, n: int, password_hash: str) -> User:
    bulk = demo.bulk
    return User(
        email=bulk.email.format(n),
        display_name=f"{rng.choice(bulk.surnames)} {rng.choice(bulk.given_names)}",
        password=password_hash,
        language=Language.EN if rng.random() < bulk.english_share else Language.JA,
        date_joined=random_time(rng, demo.history_start, demo.history_end),
    )


def bulk_acceptances(
    rng: random.Random, demo: Demo, user: User, versions: list[PolicyVersion]
) -> list[PolicyAcceptance]:
    """Sign-up on the version in force when the student joined, then maybe the later ones.

    Each acceptance is after its version took effect and before the next one did (or
    before the end of the story), so the history reads like it happened.
    """
    bulk = demo.bulk
    first = max(
        (i for i, v in enumerate(versions) if v.effective_at <= user.date_joined), default=0
    )
    rows = []
    previous_at = None
    for i in range(first, len(versions)):
        version = versions[i]
        if i == first:
            screen = Screen.SIGNUP
            at = max(user.date_joined, version.effective_at) + timedelta(
                seconds=rng.randint(*bulk.signup_after_seconds)
            )
        else:
            # A material change is asked for at the next visit, and some never come
            # back; a wording change is accepted only by those who happen to see it.
            if version.material and rng.random() < bulk.skip_material:
                break
            if not version.material and rng.random() < bulk.skip_wording:
                continue
            screen = (
                Screen.RECONSENT
                if version.material
                else rng.choice([Screen.REVIEW, Screen.APPLICATION])
            )
            end = versions[i + 1].effective_at if i + 1 < len(versions) else demo.history_end
            start = max(version.effective_at, previous_at) + timedelta(minutes=1)
            if start >= end:
                break
            at = random_time(rng, start, end)
        rows.append(
            PolicyAcceptance(
                student_id=user.pk,
                version_id=version.pk,
                accepted_at=at,
                screen=screen,
                language=user.language,
                text_sha256=version.stored_sha256(user.language),
                ip_address=rng.choice(demo.activity.ip_addresses),
                user_agent=rng.choice(demo.activity.user_agents),
            )
        )
        previous_at = at
    return rows
