"""What the back-office tests act on: one small world, each part made only when a test asks
for it, and staff members in the roles the migration created."""

from functools import cached_property
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group

from consent.api.keys import api_key_create
from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure.services import request_file
from inferences.services import inference_dispute, inference_model_object
from portal.models import PrivacyContact
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    InferenceFactory,
    PolicyVersionFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
    inference_model,
    opt_in_purposes,
    student_who_accepted,
)


class World:
    def __init__(self, capture_on_commit):
        self._capture = capture_on_commit

    @cached_property
    def purposes(self):
        """(behaviour analysis, provision to employer): both per-employer opt-in."""
        return opt_in_purposes()

    @cached_property
    def filed(self):
        """A student whose data went to two companies files a deletion request; both
        companies have been emailed their link."""
        analysis, provision = self.purposes
        student, version = student_who_accepted(
            analysis, provision, email="hanako@example.jp", display_name="Hanako"
        )
        employers = [EmployerFactory(name="株式会社さくら"), EmployerFactory(name="Momiji KK")]
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(
            student=student, employer=employers[0], purpose=provision, data_items="score"
        )
        with self._capture(execute=True):
            data_request = request_file(student=student, kind="deletion")
        by_employer = {t.employer_id: t for t in data_request.tasks.select_related("employer")}
        # In the order of `employers`: the first company is the one that received data.
        tasks = [by_employer[employer.pk] for employer in employers]
        assert [task.status for task in tasks] == ["sent", "sent"]
        return SimpleNamespace(request=data_request, student=student, version=version, tasks=tasks)

    @property
    def task(self):
        return self.filed.tasks[0]

    @cached_property
    def draft(self):
        return PolicyVersionFactory(label="2099.01", purposes=[PurposeFactory(code="account")])

    @cached_property
    def reconsent_purpose(self):
        """A purpose the version in force lists, and a student who never accepted it."""
        analysis, _provision = self.purposes
        student_who_accepted(analysis, email="accepted@example.jp")
        UserFactory(email="never-accepted@example.jp")
        return analysis

    @cached_property
    def api_client(self):
        return api_key_create(name="Analytics pipeline")[0]

    @cached_property
    def employer(self):
        """A company with its primary contact and a second one."""
        employer = EmployerFactory(name="Aoba Systems")
        PrivacyContact.objects.create(
            employer=employer, name="Legal", email="legal@aoba.example", is_primary=False
        )
        return employer

    @cached_property
    def consenting_student(self):
        """A student who accepted a version listing behaviour analysis, and a company."""
        analysis, _provision = self.purposes
        student, _version = student_who_accepted(analysis, email="writes@example.jp")
        return SimpleNamespace(student=student, employer=EmployerFactory(), purpose=analysis)

    @cached_property
    def ledgers(self):
        """A row in every ledger: the request's (acceptances, consent events, consents,
        provisions, request events, emails), a stop-use notice for each purpose, an
        activity record, and an inference handed to the company, which the student
        disputed and whose model they objected to (a notice to the company)."""
        filed = self.filed
        employer = filed.tasks[0].employer  # it received the student's data
        with self._capture(execute=True):
            for purpose in self.purposes:
                consent_grant(student=filed.student, employer=employer, purpose=purpose)
                consent_withdraw(student=filed.student, employer=employer, purpose=purpose)
        ActivityRecordFactory(student=filed.student, employer=employer)
        inference = InferenceFactory(student=filed.student, employer=employer, model=self.model)
        inference_dispute(student=filed.student, inference=inference, statement="違います")
        with self._capture(execute=True):
            inference_model_object(student=filed.student, model=self.model)
        return filed

    @cached_property
    def model(self):
        """The active decline-likelihood model."""
        return inference_model(purpose=self.purposes[0])

    @cached_property
    def draft_model(self):
        return inference_model(purpose=self.purposes[0], version="2.0-draft", active=False)

    @cached_property
    def dispute(self):
        """A student's open dispute of a result of the model."""
        student, _version = student_who_accepted(*self.purposes, email="disputes@example.jp")
        inference = InferenceFactory(student=student, model=self.model)
        return inference_dispute(student=student, inference=inference, statement="第一志望です")


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    return World(django_capture_on_commit_callbacks)


@pytest.fixture
def staff_in():
    """A staff member in one of the groups the migration made (None: in no group)."""

    def make(role: str | None, **kwargs):
        user = StaffFactory(is_superuser=False, **kwargs)
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def superuser():
    return StaffFactory()
