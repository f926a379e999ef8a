"""Reads demo/data/ into the dataclasses of demo/specs.py, and checks every name resolves.

Times in the files are the site's time (Asia/Tokyo) unless they carry an offset. Every table
is read strictly: a key the loader does not know is an error, so a typo never goes unseen.
"""

import ipaddress
import tomllib
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from demo.check import problems
from demo.specs import (
    Acceptance,
    Activity,
    Answer,
    Bulk,
    Company,
    ConsentRules,
    ConsentStep,
    Contact,
    Demo,
    DemoDataError,
    Filler,
    FillerStudent,
    Group,
    InferenceModelSpec,
    Kind,
    LaterAcceptance,
    Policy,
    Request,
    Source,
    Staff,
    Story,
    StoryInference,
    StoryStudent,
    Version,
)

DATA_DIR = Path(__file__).resolve().parent / "data"


def load(data_dir: Path | None = None) -> Demo:
    """Every file of `data_dir` (demo/data/), checked; raises DemoDataError saying what is
    wrong."""
    data_dir = Path(data_dir or DATA_DIR)
    try:
        demo = _read(data_dir)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DemoDataError):
            raise
        raise DemoDataError(f"{data_dir}: {type(exc).__name__}: {exc}") from exc
    found = problems(demo)
    if found:
        raise DemoDataError("the demo data names what does not exist:\n  " + "\n  ".join(found))
    return demo


# --- reading -------------------------------------------------------------------------------


class _Table:
    """A TOML table read key by key; `done()` refuses the keys nobody asked for."""

    def __init__(self, data: dict, where: str):
        self.data, self.where, self.seen = data, where, set()

    def __call__(self, key: str, default: Any = ...) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                raise DemoDataError(f"{self.where}: `{key}` is missing")
            return default
        return self.data[key]

    def table(self, key: str) -> "_Table":
        return _Table(self(key), f"{self.where}: {key}")

    def tables(self, key: str, default: Any = ...) -> Iterator["_Table"]:
        for n, item in enumerate(self(key, default), 1):
            yield _Table(item, f"{self.where}: {key} #{n}")

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise DemoDataError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


def _toml(path: Path) -> _Table:
    with path.open("rb") as file:
        return _Table(tomllib.load(file), str(path.relative_to(path.parents[1])))


def _time(value: datetime | date) -> datetime:
    """An aware datetime in the site's time zone; a bare date is its midnight."""
    tz = timezone.get_default_timezone()
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _range(value: list) -> tuple[int, int]:
    low, high = value
    return int(low), int(high)


def _read(root: Path) -> Demo:
    top = _toml(root / "demo.toml")
    demo = dict(
        seed=top("seed"),
        password=top("password"),
        history_start=_time(top("history_start")),
        history_end=_time(top("history_end")),
    )
    top.done()

    purposes = []
    file = _toml(root / "purposes.toml")
    for row in file.tables("purpose"):
        purposes.append({key: row(key) for key in row.data})
    file.done()

    companies = []
    file = _toml(root / "companies.toml")
    for row in file.tables("company"):
        contacts = []
        for c in row.tables("contact"):
            contacts.append(Contact(c("name"), c("email"), c("language")))
            c.done()
        companies.append(
            Company(
                name=row("name"),
                name_en=row("name_en"),
                corporate_number=row("corporate_number"),
                created_at=_time(row("created_at")),
                contacts=tuple(contacts),
            )
        )
        row.done()
    file.done()

    file = _toml(root / "staff.toml")
    totp_secret = file("totp_secret")
    staff = []
    for row in file.tables("staff"):
        staff.append(
            Staff(
                email=row("email"),
                display_name=row("display_name"),
                joined=_time(row("joined")),
                superuser=row("superuser", False),
                role=row("role", ""),
            )
        )
        row.done()
    file.done()

    file = _toml(root / "sources.toml")
    sources = []
    for row in file.tables("source"):
        sources.append(Source(row("name"), row("holds"), row("endpoint"), row("secret")))
        row.done()
    file.done()

    return Demo(
        **demo,
        purposes=tuple(purposes),
        companies=tuple(companies),
        totp_secret=totp_secret,
        staff=tuple(staff),
        sources=tuple(sources),
        policy=_policy(root / "policies"),
        filler=_filler(_toml(root / "students.toml")),
        bulk=_bulk(_toml(root / "bulk.toml")),
        activity=_activity(_toml(root / "activity.toml")),
        stories=tuple(_story(path) for path in sorted((root / "stories").glob("*.toml"))),
        inference_models=_inference_models(_toml(root / "inference_models.toml")),
    )


def _inference_models(file: _Table) -> tuple[InferenceModelSpec, ...]:
    models = []
    for row in file.tables("model"):
        named = ("code", "version", "purpose", "created_at", "activated_at", "activated_by")
        models.append(
            InferenceModelSpec(
                code=row("code"),
                version=str(row("version")),
                purpose=row("purpose"),
                created_at=_time(row("created_at")),
                activated_at=_time(row("activated_at")),
                activated_by=row("activated_by"),
                fields={key: row(key) for key in row.data if key not in named},
            )
        )
        row.done()
    file.done()
    return tuple(models)


def _policy(folder: Path) -> Policy:
    file = _toml(folder / "versions.toml")
    versions = []
    for row in file.tables("version"):
        label = row("label")
        body = {
            lang: (folder / f"{label}.{lang}.txt").read_text(encoding="utf-8").removesuffix("\n")
            for lang in ("ja", "en")
        }
        versions.append(
            Version(
                label=label,
                purposes=tuple(row("purposes")),
                material=row("material"),
                effective_at=_time(row("effective_at")),
                created_at=_time(row("created_at")),
                published_at=_time(row("published_at")),
                summary_ja=row("summary_ja", ""),
                summary_en=row("summary_en", ""),
                body_ja=body["ja"],
                body_en=body["en"],
            )
        )
        row.done()
    policy = Policy(file("title_ja"), file("title_en"), file("published_by"), tuple(versions))
    file.done()
    return policy


def _filler(file: _Table) -> Filler:
    groups = []
    for row in file.tables("group"):
        accepts = []
        for step in row.tables("accepts", []):
            accepts.append(
                LaterAcceptance(step("version"), tuple(step("screens")), _time(step("before")))
            )
            step.done()
        groups.append(Group(_time(row("joined_before")), tuple(accepts)))
        row.done()
    students = []
    for row in file.tables("students"):
        students.append(FillerStudent(row("email"), row("name"), row("language", "ja")))
        row.done()
    rules = file.table("consents")
    consents = ConsentRules(
        version=rules("version"),
        analysis=rules("analysis"),
        provision=rules("provision"),
        max_companies=rules("max_companies"),
        withdraw_every=rules("withdraw_every"),
        data_items=rules("data_items"),
    )
    rules.done()
    filler = Filler(
        students=tuple(students),
        groups=tuple(groups),
        signup_after_minutes=_range(file("signup_after_minutes")),
        accept_after_hours=file("accept_after_hours"),
        activity=_range(file("activity")),
        consents=consents,
    )
    file.done()
    return filler


def _bulk(file: _Table) -> Bulk:
    bulk = Bulk(
        email=file("email"),
        english_share=file("english_share"),
        signup_after_seconds=_range(file("signup_after_seconds")),
        skip_material=file("skip_material"),
        skip_wording=file("skip_wording"),
        activity=_range(file("activity")),
        surnames=tuple(file("surnames")),
        given_names=tuple(file("given_names")),
    )
    file.done()
    return bulk


def _activity(file: _Table) -> Activity:
    kinds = {}
    table = file.table("kind")
    for name in table.data:
        row = table.table(name)
        kinds[name] = Kind(
            weight=row("weight"),
            about_company=row("about_company", False),
            detail=row("detail"),
            detail_about_company=row("detail_about_company", ""),
        )
        row.done()
    table.done()
    networks = [ipaddress.ip_network(net) for net in file("ip_networks")]
    activity = Activity(
        company_share=file("company_share"),
        ip_addresses=tuple(str(host) for net in networks for host in net.hosts()),
        user_agents=tuple(file("user_agents")),
        kinds=kinds,
        words={name: tuple(words) for name, words in file("words").items()},
    )
    file.done()
    return activity


def _story(path: Path) -> Story:
    file = _toml(path)
    student = file("student")
    if isinstance(student, dict):
        row = file.table("student")
        student = StoryStudent(
            email=row("email"),
            display_name=row("display_name"),
            language=row("language", "ja"),
            joined=_time(row("joined")),
            activity=row("activity", 0),
        )
        row.done()
        email = student.email
    else:
        email, student = student, None
    acceptances = []
    for row in file.tables("acceptance", []):
        acceptances.append(Acceptance(row("version"), row("screen"), _time(row("at"))))
        row.done()
    consents = []
    for row in file.tables("consent", []):
        consents.append(
            ConsentStep(
                row("action"),
                row("company"),
                row("purpose"),
                row("data_items", ""),
                row("days_ago", 0),
            )
        )
        row.done()
    inferences = []
    for row in file.tables("inference", []):
        inferences.append(
            StoryInference(
                model=row("model"),
                company=row("company"),
                output=row("output"),
                days_ago=row("days_ago"),
                handed_over=row("handed_over", False),
                expect=row("expect", "stored"),
                dispute=row("dispute", ""),
            )
        )
        row.done()
    requests = []
    for row in file.tables("request", []):
        answers = []
        for a in row.tables("answer", []):
            answers.append(Answer(a("company"), a("answer"), a("answered_by"), a("statement")))
            a.done()
        requests.append(
            Request(
                row("kind"),
                row("filed_days_ago", 0),
                tuple(answers),
                row("expect", {}),
                row("correction", {}),
            )
        )
        row.done()
    story = Story(
        name=path.stem,
        email=email,
        student=student,
        login_note=file("login_note", ""),
        acceptances=tuple(acceptances),
        consents=tuple(consents),
        requests=tuple(requests),
        inferences=tuple(inferences),
    )
    file.done()
    return story
