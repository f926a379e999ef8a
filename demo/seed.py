"""Makes the demo data's rows, through the apps' services wherever a person's action would.

Policy versions are published with policy_publish and the students' acceptances made with
policy_accept, at the historical time they happened; consents, provisions and requests go
through consent's and disclosure's services, so ledgers, events and emails are made as the
site makes them; inference models are activated by their officer, and the stories' results
sent through the service behind POST /api/v1/inferences, which refuses what it would refuse
the pipeline. Every row is looked up by its natural key (purpose code, version label,
company name, user email) and only what is missing is created: running it again adds
nothing. The caller holds the transactions (portal/management/commands/seed_demo.py).
"""

import random
from datetime import timedelta

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.api.payloads import inference_items
from consent.models import (
    ApiClient,
    Consent,
    ConsentEvent,
    PolicyAcceptance,
    PolicyVersion,
    Purpose,
)
from consent.services import (
    consent_grant,
    consent_withdraw,
    policy_accept,
    policy_publish,
    policy_update_draft,
    provision_record,
)
from demo import generate
from demo.specs import Demo, DemoDataError
from disclosure.coverage import RequestCoverage
from disclosure.models import DataRequest, DataSource, RecipientTask, RequestEvent
from disclosure.services import recipient_task_answer, request_file, requests_sweep
from disclosure.services.corrections import CorrectionAsked, correction_file
from inferences.models import Inference, InferenceModel
from inferences.services import inference_model_activate, inferences_record
from portal.models import ActivityRecord, EmailMessage, Employer, PrivacyContact, User


class Seeder:
    def __init__(self, demo: Demo):
        self.demo = demo
        self.created: dict[str, int] = {}
        # One hash for everybody: PBKDF2 is slow on purpose, and they share the password.
        self.password_hash = make_password(demo.password)
        self.purposes: dict[str, Purpose] = {}
        self.employers: list[Employer] = []
        self.versions: dict[str, PolicyVersion] = {}
        self.inference_models: dict[str, InferenceModel] = {}  # code: its newest version

    def count(self, what: str, created: bool | int = True) -> None:
        self.created[what] = self.created.get(what, 0) + int(created)

    def summary(self) -> str:
        parts = [f"{name} {n:,}" for name, n in self.created.items() if n]
        if not parts:
            return "Demo data already present; nothing to add."
        return "Created: " + ", ".join(parts) + "."

    # --- the site as it stood: purposes, companies, staff, policy versions, students -------

    def base(self) -> None:
        self.seed_purposes()
        self.seed_companies()
        self.seed_staff()
        self.seed_versions()
        self.seed_inference_models()
        self.seed_students()

    def seed_purposes(self) -> None:
        for spec in self.demo.purposes:
            fields = dict(spec)
            code = fields.pop("code")
            purpose, created = Purpose.objects.get_or_create(code=code, defaults=fields)
            self.count("purposes", created)
            self.purposes[code] = purpose

    def seed_companies(self) -> None:
        for company in self.demo.companies:
            employer, created = Employer.objects.get_or_create(
                name=company.name,
                defaults={
                    "name_en": company.name_en,
                    "corporate_number": company.corporate_number,
                    "created_at": company.created_at,
                },
            )
            self.count("employers", created)
            if employer.corporate_number is None:  # made before corporate numbers
                employer.corporate_number = company.corporate_number
                employer.save(update_fields=["corporate_number"])
            if not employer.contacts.exists():
                PrivacyContact.objects.bulk_create(
                    PrivacyContact(
                        employer=employer,
                        name=contact.name,
                        email=contact.email,
                        language=contact.language,
                        is_primary=position == 0,
                        created_at=employer.created_at,
                    )
                    for position, contact in enumerate(company.contacts)
                )
                self.count("privacy contacts", len(company.contacts))
            self.employers.append(employer)

    def seed_staff(self) -> None:
        for staff in self.demo.staff:
            user = self.seed_user(
                staff.email,
                staff.display_name,
                "ja",
                staff.joined,
                is_staff=True,
                is_superuser=staff.superuser,
            )
            if staff.role:
                user.groups.add(Group.objects.get(name=staff.role))
            self.seed_second_factor(user)

    def seed_user(
        self, email, display_name, language, joined, *, is_staff=False, is_superuser=False
    ):
        """The user with this email, created with the demo password if missing.

        An existing user is left as it is (its password included); only a missing or
        unverified email address is fixed, since allauth refuses unverified logins.
        """
        user, created = User.objects.get_or_create(
            email=email,
            defaults={
                "display_name": display_name,
                "language": language,
                "password": self.password_hash,
                "date_joined": joined,
                "is_staff": is_staff,
                "is_superuser": is_superuser,
            },
        )
        self.count("users", created)
        address, address_created = EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        self.count("email addresses", address_created)
        if not address.verified:
            EmailAddress.objects.filter(pk=address.pk).update(verified=True)
        if not address.primary and not EmailAddress.objects.filter(user=user, primary=True):
            EmailAddress.objects.filter(pk=address.pk).update(primary=True)
        return user

    def seed_second_factor(self, user: User) -> None:
        """Staff open the admin only with a second factor: the demo authenticator app and a set
        of recovery codes (for a person without a TOTP app), each made once."""
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, self.demo.totp_secret)
            self.count("authenticator apps", True)
        if not Authenticator.objects.filter(
            user=user, type=Authenticator.Type.RECOVERY_CODES
        ).exists():
            RecoveryCodes.activate(user)
            self.count("recovery code sets", True)

    def seed_versions(self) -> None:
        policy = self.demo.policy
        by = User.objects.get(email=policy.published_by)
        for spec in policy.versions:
            fields = {
                "title_ja": policy.title_ja,
                "title_en": policy.title_en,
                "body_ja": spec.body_ja,
                "body_en": spec.body_en,
                "summary_ja": spec.summary_ja,
                "summary_en": spec.summary_en,
                "material": spec.material,
                "effective_at": spec.effective_at,
            }
            version = PolicyVersion.objects.filter(label=spec.label).first()
            if version is not None and version.is_published:
                self.versions[spec.label] = version
                continue
            purposes = [self.purposes[code] for code in spec.purposes]
            if version is None:
                version = PolicyVersion(label=spec.label, created_at=spec.created_at, **fields)
                version.save()
                version.purposes.set(purposes)
            else:  # a draft left by someone: make it the story's text before publishing
                version = policy_update_draft(version=version, purposes=purposes, **fields)
            self.versions[spec.label] = policy_publish(version=version, by=by, at=spec.published_at)
            self.count("policy versions")

    def seed_inference_models(self) -> None:
        """The models the pipeline runs, each activated by its Privacy officer."""
        for spec in self.demo.inference_models:
            model = InferenceModel.objects.filter(code=spec.code, version=spec.version).first()
            if model is None:
                model = InferenceModel.objects.create(
                    code=spec.code,
                    version=spec.version,
                    purpose=self.purposes[spec.purpose],
                    created_at=spec.created_at,
                    **spec.fields,
                )
                self.count("inference models")
            if not model.is_active:
                model = inference_model_activate(
                    model=model,
                    by=User.objects.get(email=spec.activated_by),
                    at=spec.activated_at,
                )
            newest = self.inference_models.get(spec.code)
            if newest is None or model.activated_at > newest.activated_at:
                self.inference_models[spec.code] = model

    def seed_students(self) -> None:
        """The stories' students, then the filler ones, with acceptances and activity."""
        demo = self.demo
        plans = generate.story_plans(demo) + generate.filler_plans(random.Random(demo.seed), demo)
        for plan in plans:
            # The same draws happen whether or not the student exists, so the data a run
            # creates never depends on what an earlier run left.
            student_rng = random.Random(f"{demo.seed}:{plan.email}")
            user = self.seed_user(plan.email, plan.display_name, plan.language, plan.joined)
            for planned in plan.acceptances:
                version = self.versions[planned.label]
                ip_address = student_rng.choice(demo.activity.ip_addresses)
                user_agent = student_rng.choice(demo.activity.user_agents)
                if PolicyAcceptance.objects.filter(student=user, version=version).exists():
                    continue
                policy_accept(
                    student=user,
                    version=version,
                    screen=planned.screen,
                    language=plan.language,
                    shown_sha256=version.stored_sha256(plan.language),
                    ip_address=ip_address,
                    user_agent=user_agent,
                    at=planned.at,
                )
                self.count("acceptances")
            # A student whose deletion request erased their activity keeps it erased.
            erased = user.data_requests.filter(kind="deletion").exists()
            if not erased and not ActivityRecord.objects.filter(student=user).exists():
                records = generate.activity_records(
                    student_rng, demo, user.pk, plan.joined, plan.activity_count, self.employers
                )
                ActivityRecord.objects.bulk_create(records)
                self.count("activity records", len(records))

    # --- consents: the filler students' (drawn), then the stories' (as written) ----------

    def consents(self) -> None:
        """Per-company consent for the filler students who accepted the version that asks
        for it: grants for some of the companies they applied to, provisions under some of
        them, and a withdrawal (students.toml's [consents])."""
        demo, rules = self.demo, self.demo.filler.consents
        analysis, provision = self.purposes[rules.analysis], self.purposes[rules.provision]
        students = (
            User.objects.filter(
                email__in=[s.email for s in demo.filler.students],
                policy_acceptances__version__label=rules.version,
            )
            .exclude(consent_events__isnull=False)
            .order_by("email")
            .distinct()
        )
        for index, student in enumerate(students):
            student_rng = random.Random(f"{demo.seed}:consent:{student.email}")
            applied = list(
                Employer.objects.filter(
                    activity_records__student=student,
                    activity_records__kind=ActivityRecord.Kind.APPLICATION,
                )
                .distinct()
                .order_by("name")
            ) or [student_rng.choice(self.employers)]
            chosen = applied[: student_rng.randint(1, rules.max_companies)]
            for position, employer in enumerate(chosen):
                consent_grant(student=student, employer=employer, purpose=analysis)
                self.count("consent events")
                if position % 2 == 0:
                    consent_grant(student=student, employer=employer, purpose=provision)
                    provision_record(
                        student=student,
                        employer=employer,
                        purpose=provision,
                        data_items=rules.data_items,
                    )
                    self.count("consent events")
                    self.count("provisions")
            if index % rules.withdraw_every == 0:
                consent_withdraw(student=student, employer=chosen[0], purpose=provision)
                self.count("consent events")
        for story in demo.stories:
            if story.consents:
                self.story_consents(story)

    def story_consents(self, story) -> None:
        student = User.objects.get(email=story.email)
        if student.consent_events.exists():
            return
        employers = {e.name: e for e in self.employers}
        for step in story.consents:
            what = {
                "student": student,
                "employer": employers[step.company],
                "purpose": self.purposes[step.purpose],
            }
            if step.action == "provide":
                provision_record(**what, data_items=step.data_items)
                self.count("provisions")
            else:
                event = (consent_grant if step.action == "grant" else consent_withdraw)(**what)
                self.count("consent events")
                if step.days_ago:
                    backdate_consent(event, timedelta(days=step.days_ago))

    # --- the stories' inferences: what the pipeline sent, through the API's service ------

    def inferences(self) -> None:
        for story in self.demo.stories:
            if story.inferences:
                self.story_inferences(story)

    def story_inferences(self, story) -> None:
        """Send the story's results as the pipeline would, each answered as the story
        expects (recorded, or refused: a demo that stopped saying what it says is an
        error); then the student's disputes."""
        student = User.objects.get(email=story.email)
        if student.inferences.exists():
            return
        pipeline = self.pipeline()
        employers = {e.name: e for e in self.employers}
        now = timezone.now()
        items = []
        for n, spec in enumerate(story.inferences, 1):
            model = self.inference_models[spec.model]
            made = now - timedelta(days=spec.days_ago)
            items.append(
                {
                    "id": f"{story.name}-{n}",
                    "student": str(student.public_id),
                    "model": model.code,
                    "model_version": model.version,
                    "employer": employers[spec.company].pk,
                    "output": spec.output,
                    "made_at": made.isoformat(),
                    "input_from": (made - timedelta(days=30)).isoformat(),
                    "input_to": made.isoformat(),
                    "handed_over_at": (made + timedelta(hours=2)).isoformat()
                    if spec.handed_over
                    else None,
                }
            )
        outcomes = inferences_record(
            client=pipeline,
            items=inference_items({"inferences": items}),
            coverage_for=RequestCoverage.of_students,
        )
        for item, spec, outcome in zip(items, story.inferences, outcomes, strict=True):
            answered = outcome.result if outcome.result == "stored" else outcome.code
            if answered != spec.expect:
                raise DemoDataError(
                    f"stories/{story.name}.toml: result {item['id']} was answered "
                    f"{answered!r}, not {spec.expect!r} ({outcome.message})"
                )
            self.count("inferences" if answered == "stored" else "inferences refused")
            if spec.dispute:
                # A dispute is a correction request scoped to the result (docs/inferences.md).
                inference = Inference.objects.get(sender=pipeline, source_id=item["id"])
                correction_file(
                    student=student,
                    asked=CorrectionAsked(
                        target="inference", inference=inference, wrong=spec.dispute
                    ),
                    language=student.language,
                )
                self.count("disputes")

    def pipeline(self) -> ApiClient:
        """The demo's analytics pipeline: its key is made once and shown to nobody."""
        client = ApiClient.objects.filter(name=DEMO_PIPELINE, revoked_at=None).first()
        if client is None:
            client = api_key_create(name=DEMO_PIPELINE, scopes=[ApiClient.Scope.INFERENCES_WRITE])[
                0
            ]
        return client

    # --- the stories' requests ---------------------------------------------------------

    def requests(self) -> None:
        """Each story's requests, in story order, each in its own transaction as a student's
        would be; then one sweep, which does what the days since filing would have done."""
        filed = False
        for story in self.demo.stories:
            if not story.requests:
                continue
            student = User.objects.get(email=story.email)
            for spec in story.requests:
                if student.data_requests.filter(kind=spec.kind).exists():
                    continue
                with transaction.atomic():
                    request = self.file(student, spec)
                    if spec.filed_days_ago:
                        backdate(request, timedelta(days=spec.filed_days_ago))
                self.count("data requests")
                filed = True
                for answer in spec.answers:
                    task = request.tasks.filter(employer__name=answer.company).first()
                    if task is None:
                        raise DemoDataError(
                            f"stories/{story.name}.toml: {story.email}'s {spec.kind} request "
                            f"went to no {answer.company!r} (their data never did)"
                        )
                    with transaction.atomic():
                        recipient_task_answer(
                            task=task,
                            answer=answer.answer,
                            answered_by=answer.answered_by,
                            statement=answer.statement,
                        )
        if filed:
            requests_sweep()

    def file(self, student: User, spec) -> DataRequest:
        if spec.kind == DataRequest.Kind.CORRECTION:
            asked = dict(spec.correction)
            if asked.get("target") == "profile":
                asked.setdefault("profile_field", "display_name")
            return correction_file(
                student=student, asked=CorrectionAsked(**asked), language=student.language
            )
        return request_file(student=student, kind=spec.kind)

    def sources(self) -> None:
        for source in self.demo.sources:
            _source, created = DataSource.objects.get_or_create(
                name=source.name,
                defaults={
                    "holds": source.holds,
                    "endpoint": source.endpoint,
                    "secret": source.secret,
                },
            )
            self.count("data sources", created)


DEMO_PIPELINE = "分析パイプライン（デモ） / Analytics pipeline (demo)"


def backdate_consent(event: ConsentEvent, back: timedelta) -> None:
    """Move a fresh grant or withdrawal back, as if the student had made it `back` ago (the
    ledger's rows are never changed by the site; this is the demo's history)."""
    at = event.occurred_at - back
    ConsentEvent.objects.filter(pk=event.pk).update(occurred_at=at)
    Consent.objects.filter(event=event).update(updated_at=at)


def backdate(request: DataRequest, back: timedelta) -> None:
    """Move a fresh request's own times back, as if it had been filed `back` ago."""
    DataRequest.objects.filter(pk=request.pk).update(
        submitted_at=request.submitted_at - back, due_at=request.due_at - back
    )
    for task in RecipientTask.objects.filter(request=request).select_related("email"):
        RecipientTask.objects.filter(pk=task.pk).update(
            created_at=task.created_at - back,
            sent_at=task.sent_at - back if task.sent_at else None,
        )
        if task.email is not None:
            EmailMessage.objects.filter(pk=task.email.pk).update(
                created_at=task.email.created_at - back,
                sent_at=task.email.sent_at - back if task.email.sent_at else None,
            )
    for event in RequestEvent.objects.filter(request=request):
        RequestEvent.objects.filter(pk=event.pk).update(at=event.at - back)
