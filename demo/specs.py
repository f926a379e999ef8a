"""What the demo data files say, as plain frozen dataclasses (demo/load.py fills them)."""

import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class DemoDataError(ValueError):
    """The demo data does not parse, or names something that does not exist."""


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    language: str


@dataclass(frozen=True)
class Company:
    name: str
    name_en: str
    corporate_number: str
    created_at: datetime
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Staff:
    email: str
    display_name: str
    joined: datetime
    superuser: bool
    role: str  # a group made by backoffice's migrations; "" for none


@dataclass(frozen=True)
class Source:
    name: str
    holds: str
    endpoint: str
    secret: str


@dataclass(frozen=True)
class Version:
    label: str
    purposes: tuple[str, ...]
    material: bool
    effective_at: datetime
    created_at: datetime
    published_at: datetime
    summary_ja: str
    summary_en: str
    body_ja: str
    body_en: str


@dataclass(frozen=True)
class Policy:
    title_ja: str
    title_en: str
    published_by: str
    versions: tuple[Version, ...]


@dataclass(frozen=True)
class LaterAcceptance:
    version: str
    screens: tuple[str, ...]
    before: datetime


@dataclass(frozen=True)
class Group:
    joined_before: datetime
    accepts: tuple[LaterAcceptance, ...]


@dataclass(frozen=True)
class FillerStudent:
    email: str
    name: str
    language: str


@dataclass(frozen=True)
class ConsentRules:
    version: str
    analysis: str
    provision: str
    max_companies: int
    withdraw_every: int
    data_items: str


@dataclass(frozen=True)
class Filler:
    students: tuple[FillerStudent, ...]
    groups: tuple[Group, ...]
    signup_after_minutes: tuple[int, int]
    accept_after_hours: int
    activity: tuple[int, int]
    consents: ConsentRules


@dataclass(frozen=True)
class Bulk:
    email: str  # a format with one number: bulk-{:07d}@example.jp
    english_share: float
    signup_after_seconds: tuple[int, int]
    skip_material: float
    skip_wording: float
    activity: tuple[int, int]
    surnames: tuple[str, ...]
    given_names: tuple[str, ...]

    @property
    def prefix(self) -> str:
        return self.email.split("{", 1)[0]

    @property
    def suffix(self) -> str:
        return self.email.rsplit("}", 1)[1]


@dataclass(frozen=True)
class Kind:
    weight: int
    about_company: bool
    detail: str
    detail_about_company: str


@dataclass(frozen=True)
class Activity:
    company_share: float
    ip_addresses: tuple[str, ...]
    user_agents: tuple[str, ...]
    kinds: dict[str, Kind]
    words: dict[str, tuple[str, ...]]

    @property
    def weights(self) -> dict[str, int]:
        return {name: kind.weight for name, kind in self.kinds.items()}

    @property
    def company_kinds(self) -> set[str]:
        """The kinds that are always about a company."""
        return {name for name, kind in self.kinds.items() if kind.about_company}

    def detail(self, rng, kind: str, company: str | None) -> str:
        """A record's detail: its template, with a word drawn for the one placeholder that
        is not {company} (none is drawn when the template needs none)."""
        spec = self.kinds[kind]
        template = (
            spec.detail_about_company if company and spec.detail_about_company else spec.detail
        )
        fields = {"company": company}
        for name in placeholders(template) - {"company"}:
            fields[name] = rng.choice(self.words[name])
        return template.format(**fields)


@dataclass(frozen=True)
class StoryStudent:
    email: str
    display_name: str
    language: str
    joined: datetime
    activity: int


@dataclass(frozen=True)
class Acceptance:
    version: str
    screen: str
    at: datetime


@dataclass(frozen=True)
class ConsentStep:
    action: str  # grant, withdraw or provide
    company: str
    purpose: str
    data_items: str
    days_ago: int = 0  # a grant or withdrawal made this long before the seeding


@dataclass(frozen=True)
class InferenceModelSpec:
    code: str
    version: str
    purpose: str
    created_at: datetime
    activated_at: datetime
    activated_by: str
    fields: dict[str, Any]  # the rest of InferenceModel's fields, as the model names them


@dataclass(frozen=True)
class StoryInference:
    """A result the pipeline sent about the story's student, and what the portal answered."""

    model: str  # a code of inference_models.toml (its newest version)
    company: str
    output: float | str
    days_ago: int
    handed_over: bool
    expect: str  # "stored", or the refusal's code
    dispute: str  # what the student says is wrong with it, if she disputes it


@dataclass(frozen=True)
class Answer:
    company: str
    answer: str
    answered_by: str
    statement: str


@dataclass(frozen=True)
class Request:
    kind: str
    filed_days_ago: int
    answers: tuple[Answer, ...]
    expect: dict[str, Any]  # what the story leaves; checked by the tests, not by the seeding
    # A correction's target and words (target "profile" or "company", wrong, right).
    correction: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Story:
    name: str  # the file's name without .toml
    email: str
    student: StoryStudent | None  # None: the story is about a student defined elsewhere
    login_note: str
    acceptances: tuple[Acceptance, ...]
    consents: tuple[ConsentStep, ...]
    requests: tuple[Request, ...]
    inferences: tuple[StoryInference, ...] = ()


@dataclass(frozen=True)
class Demo:
    seed: int
    password: str
    history_start: datetime
    history_end: datetime
    purposes: tuple[dict[str, Any], ...]  # Purpose's fields, as the model names them
    companies: tuple[Company, ...]
    totp_secret: str
    staff: tuple[Staff, ...]
    sources: tuple[Source, ...]
    policy: Policy
    filler: Filler
    bulk: Bulk
    activity: Activity
    stories: tuple[Story, ...]
    inference_models: tuple[InferenceModelSpec, ...] = ()

    @property
    def superuser(self) -> Staff:
        return next(s for s in self.staff if s.superuser)

    @property
    def logins(self) -> tuple[Story, ...]:
        """The stories whose student is a demo login (printed by seed_demo)."""
        return tuple(story for story in self.stories if story.login_note)


def placeholders(template: str) -> set[str]:
    """The names a str.format template fills in."""
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name}
