"""The demo data (demo/data/): every file parses and names only what exists, and what seed_demo
makes from it keeps the promises of README.md's "Demo logins" and of the stories."""

import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from consent.models import ConsentEvent, Provision
from demo.check import problems
from demo.load import DATA_DIR, load
from demo.specs import DemoDataError
from disclosure.models import DataRequest
from inferences.models import InferenceDispute
from portal.models import User

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_logins() -> list[tuple[str, str]]:
    """(email, password) of each row of README's "Demo logins" table."""
    section = README.read_text(encoding="utf-8").split("## Demo logins", 1)[1].split("\n## ")[0]
    return re.findall(r"^\|[^|]*\| `([^`]+)` \| `([^`]+)` \|", section, flags=re.M)


def test_every_file_parses_and_names_only_what_exists():
    demo = load()

    assert problems(demo) == []
    companies = {c.name for c in demo.companies}
    students = {s.email for s in demo.filler.students} | {
        story.email for story in demo.stories if story.student
    }
    for story in demo.stories:
        assert story.email in students, story.name
        for request in story.requests:
            assert {a.company for a in request.answers} <= companies, story.name
            assert set(request.expect.get("overdue", [])) <= companies, story.name
        assert {step.company for step in story.consents} <= companies, story.name
    # Every file is read: a file the loader does not know would be silently left out.
    read = {
        "demo",
        "purposes",
        "companies",
        "staff",
        "sources",
        "students",
        "activity",
        "bulk",
        "inference_models",
    }
    assert {p.stem for p in DATA_DIR.glob("*.toml")} == read
    labels = {v.label for v in demo.policy.versions}
    texts = {p.name for p in (DATA_DIR / "policies").glob("*.txt")}
    assert texts == {f"{label}.{lang}.txt" for label in labels for lang in ("ja", "en")}
    assert {p.suffix for p in (DATA_DIR / "stories").iterdir()} == {".toml"}


def test_the_readme_logins_are_the_data_s():
    demo = load()

    logins = readme_logins()
    assert [email for email, _ in logins] == [s.email for s in demo.logins] + [
        s.email for s in demo.staff
    ]
    assert {password for _, password in logins} == {demo.password}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("stories/03-disclosure.toml", "filed_days_ago", "filed_day_ago"),
            "unknown key(s) filed_day_ago",
        ),
        (
            ("stories/02-deletion-answered.toml", "朝霧エレクトロニクス", "霧"),
            "no company '霧株式会社'",
        ),
        (("stories/04-cessation-overdue.toml", "student009", "student999"), "no student"),
        (("policies/versions.toml", '"job_matching"]', '"jobs"]'), "no purpose 'jobs'"),
        (
            ("inference_models.toml", '"behaviour_analysis"', '"analysis"'),
            "no purpose 'analysis'",
        ),
        (("stories/05-inferences.toml", '"before_grant"', '"before"'), "no outcome 'before'"),
    ],
)
def test_a_typo_or_a_name_that_does_not_exist_is_refused(tmp_path, change, message):
    data = shutil.copytree(DATA_DIR, tmp_path / "data")
    name, old, new = change
    path = data / name
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")

    with pytest.raises(DemoDataError, match=re.escape(message)):
        load(data)


@pytest.mark.django_db
def test_the_seeded_demo_keeps_the_readme_and_the_stories_promises():
    output = StringIO()
    call_command("seed_demo", stdout=output)
    demo = load()

    for email, password in readme_logins():
        assert Client().login(email=email, password=password), email
        assert f"{email} / {password}" in output.getvalue()
    for staff in demo.staff:
        user = User.objects.get(email=staff.email)
        assert user.is_staff and user.is_superuser == staff.superuser
        if staff.role:
            assert user.groups.get() == Group.objects.get(name=staff.role)
    for story in demo.stories:
        student = User.objects.get(email=story.email)
        accepted = student.policy_acceptances.values_list("version__label", "screen", "accepted_at")
        assert {(a.version, a.screen, a.at) for a in story.acceptances} <= set(accepted)
        for spec in story.requests:
            request = DataRequest.objects.get(student=student, kind=spec.kind)
            assert request.status == spec.expect.get("status", request.status), story.name
            overdue = request.tasks.filter(overdue=True).values_list("employer__name", flat=True)
            assert sorted(overdue) == sorted(spec.expect.get("overdue", [])), story.name
            for answer in spec.answers:
                task = request.tasks.get(employer__name=answer.company)
                assert (task.answer, task.answered_by) == (answer.answer, answer.answered_by)


@pytest.mark.django_db
def test_the_inference_story_is_sent_through_the_intake_as_the_pipeline_would(client):
    call_command("seed_demo", stdout=StringIO())
    [story] = [s for s in load().stories if s.inferences]
    student = User.objects.get(email=story.email)

    stored = [s for s in story.inferences if s.expect == "stored"]
    results = list(student.inferences.order_by("made_at"))
    assert [r.output_number for r in results] == [s.output for s in stored]
    assert len(stored) < len(story.inferences)  # the one made before her grant was refused
    assert [r.handed_over for r in results] == [s.handed_over for s in stored]
    [dispute] = InferenceDispute.objects.filter(student=student)
    assert dispute.is_open and dispute.inference.output_number == 69
    # Filed as the student's form files it: a correction request scoped to the result.
    assert (dispute.correction.target, dispute.correction.request.kind) == (
        "inference",
        "correction",
    )
    # Every result was made after the grant it relied on, by the activated model.
    for result in results:
        grant = ConsentEvent.objects.filter(
            student=student, employer=result.employer, action="grant"
        ).order_by("occurred_at")[0]
        assert grant.occurred_at <= result.made_at
        assert result.model.activated_at <= result.made_at
    client.force_login(student)
    page = client.get("/inferences/").content.decode()
    assert "内定辞退率の予測" in page and "異議あり" in page

    call_command("seed_demo", stdout=StringIO())  # again: nothing added
    assert student.inferences.count() == len(stored)


STORY = """
login_note = "a story added as data"

[student]
email = "new-story@example.jp"
display_name = "物語 新"
joined = 2019-04-01T10:00:00
activity = 5

[[acceptance]]
version = "2019.03"
screen = "signup"
at = 2019-04-01T10:05:00

[[consent]]
action = "grant"
company = "株式会社みなと精機"
purpose = "behaviour_analysis"

[[consent]]
action = "grant"
company = "株式会社みなと精機"
purpose = "provision_to_employer"

[[consent]]
action = "provide"
company = "株式会社みなと精機"
purpose = "provision_to_employer"
data_items = "関心度スコア"

[[consent]]
action = "withdraw"
company = "株式会社みなと精機"
purpose = "provision_to_employer"

[[request]]
kind = "disclosure"
expect = { status = "in_progress" }
"""


@pytest.mark.django_db
def test_a_story_added_as_data_is_seeded(tmp_path, monkeypatch):
    data = shutil.copytree(DATA_DIR, tmp_path / "data")
    (data / "stories" / "05-new.toml").write_text(STORY, encoding="utf-8")
    monkeypatch.setattr("demo.load.DATA_DIR", data)

    output = StringIO()
    call_command("seed_demo", stdout=output)

    student = User.objects.get(email="new-story@example.jp")
    assert "new-story@example.jp / demo-pass-2026\n            (a story added as data)" in (
        output.getvalue()
    )
    assert student.activity_records.count() == 5
    events = ConsentEvent.objects.filter(student=student).order_by("pk")
    assert [(e.purpose.code, e.action) for e in events] == [
        ("behaviour_analysis", "grant"),
        ("provision_to_employer", "grant"),
        ("provision_to_employer", "withdraw"),
    ]
    assert Provision.objects.get(student=student).data_items == "関心度スコア"
    request = DataRequest.objects.get(student=student)
    assert request.status == "in_progress"
    assert list(request.tasks.values_list("employer__name", flat=True)) == ["株式会社みなと精機"]

    call_command("seed_demo", stdout=StringIO())  # again: nothing added
    assert ConsentEvent.objects.filter(student=student).count() == 3
    assert DataRequest.objects.filter(student=student).count() == 1


def test_the_command_reports_broken_data(tmp_path, monkeypatch):
    data = shutil.copytree(DATA_DIR, tmp_path / "data")
    (data / "stories" / "05-broken.toml").write_text('student = "nobody@example.jp"\n')
    monkeypatch.setattr("demo.load.DATA_DIR", data)

    with pytest.raises(CommandError, match="no student 'nobody@example.jp'"):
        call_command("seed_demo", stdout=StringIO())
