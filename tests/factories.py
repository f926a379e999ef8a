"""Factories for every model. Published policy versions go through the service."""

import time
from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.models import PolicyVersion, Purpose, Screen
from consent.services import policy_accept, policy_publish
from inferences.models import InferenceModel
from portal.models import (
    ActivityRecord,
    Employer,
    PrivacyContact,
    User,
    corporate_number_check_digit,
)

PASSWORD = "correct-horse-battery-2026"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"student{n}@example.jp")
    display_name = factory.Sequence(lambda n: f"学生 {n}")
    language = "ja"
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        # allauth refuses login until the address is verified; most tests want a verified one.
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


def totp_activate(user, secret: str | None = None) -> str:
    """Give `user` an authenticator app (allauth's own TOTP); returns its secret."""
    secret = secret or generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def totp_code(secret: str, *, steps: int = 0) -> str:
    """The code an authenticator app shows now (or `steps` periods from now).

    Never one about to expire: allauth accepts only the current period's code, so a code made
    in a period's last seconds and checked in the next was refused on a loaded machine (a
    flaky test, once in CI). Near the end of a period this waits for the next (at most 3 s).
    """
    period = mfa_settings.TOTP_PERIOD
    left = period - time.time() % period
    if left < 3:
        time.sleep(left + 0.05)
    counter = int(time.time()) // period + steps
    return format_hotp_value(hotp_value(secret, counter))


class StaffFactory(UserFactory):
    """Staff open the admin only with a second factor: each gets an authenticator app, whose
    secret is `staff.totp_secret`. `StaffFactory(mfa=False)` makes one without."""

    email = factory.Sequence(lambda n: f"staff{n}@example.jp")
    is_staff = True
    is_superuser = True

    @factory.post_generation
    def mfa(obj, create, extracted, **kwargs):
        obj.totp_secret = totp_activate(obj) if create and extracted is not False else None


def corporate_number(base12: str) -> str:
    """A valid corporate number: the check digit, then the 12 digits."""
    return f"{corporate_number_check_digit(base12)}{base12}"


class PrivacyContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PrivacyContact

    employer = factory.SubFactory("tests.factories.EmployerFactory", primary=None)
    name = "人事部 個人情報担当"
    # Not the employer's "privacy{n}@": the two sequences count apart and would meet.
    email = factory.Sequence(lambda n: f"contact{n}@example.co.jp")
    language = "ja"
    is_primary = False


class EmployerFactory(factory.django.DjangoModelFactory):
    """A company with one primary contact; `language` and `contact_email` are that
    contact's. `primary=None` makes a company with no contact at all."""

    class Meta:
        model = Employer
        skip_postgeneration_save = True

    class Params:
        language = "ja"
        contact_email = factory.Sequence(lambda n: f"privacy{n}@example.co.jp")

    name = factory.Sequence(lambda n: f"株式会社テスト{n}")
    name_en = factory.Sequence(lambda n: f"Test Corporation {n}")
    corporate_number = factory.Sequence(lambda n: corporate_number(f"{900000000000 + n}"))
    primary = factory.RelatedFactory(
        PrivacyContactFactory,
        factory_related_name="employer",
        email=factory.SelfAttribute("..contact_email"),
        language=factory.SelfAttribute("..language"),
        is_primary=True,
    )


class ActivityRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivityRecord

    student = factory.SubFactory(UserFactory)
    kind = ActivityRecord.Kind.PAGE_VIEW
    detail = "/jobs/123"


class PurposeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purpose
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"purpose_{n}")
    title_ja = factory.LazyAttribute(lambda o: f"{o.code}の目的")
    title_en = factory.LazyAttribute(lambda o: f"Purpose {o.code}")
    description_ja = "説明"
    description_en = "Description"
    data_items_ja = "氏名、メールアドレス"
    data_items_en = "name, email address"
    category = "Core Function"


class PolicyVersionFactory(factory.django.DjangoModelFactory):
    """A draft. Use `published_version(...)` for a published one."""

    class Meta:
        model = PolicyVersion
        skip_postgeneration_save = True

    label = factory.Sequence(lambda n: f"2026.{n:02d}")
    title_ja = factory.LazyAttribute(lambda o: f"プライバシーポリシー（{o.label}版）")
    title_en = factory.LazyAttribute(lambda o: f"Privacy policy ({o.label})")
    body_ja = "1. 取得する情報\n氏名とメールアドレスを取得します。\n2. 利用目的\n求人情報の提供に利用します。"
    body_en = "1. Information we collect\nName and email.\n2. Purposes\nTo show you jobs."
    effective_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def purposes(obj, create, extracted, **kwargs):
        if not create:
            return
        obj.purposes.set(extracted if extracted is not None else [PurposeFactory(code="account")])


def published_version(*, by=None, at=None, **kwargs) -> PolicyVersion:
    return policy_publish(version=PolicyVersionFactory(**kwargs), by=by, at=at)


def accept(student, version, *, screen=Screen.SIGNUP, language="ja", at=None):
    return policy_accept(
        student=student,
        version=version,
        screen=screen,
        language=language,
        shown_sha256=version.stored_sha256(language),
        at=at,
    )


def opt_in_purposes():
    """The two behaviour-data purposes of the 2019 story, as the demo data has them."""
    analysis = PurposeFactory(
        code="behaviour_analysis",
        requires_opt_in=True,
        title_ja="閲覧履歴の分析",
        title_en="Analysing your browsing",
        category="Profiling",
    )
    provision = PurposeFactory(
        code="provision_to_employer",
        requires_opt_in=True,
        third_party_disclosure=True,
        title_ja="分析結果の企業への提供",
        title_en="Giving the result to the company",
        category="Marketing Third Parties",
    )
    return analysis, provision


def student_who_accepted(*purposes, **kwargs):
    """A student who accepted a published version listing `purposes` (and `account`)."""
    version = published_version(purposes=[PurposeFactory(code="account"), *purposes])
    student = UserFactory(**kwargs)
    accept(student, version)
    return student, version


def inference_model(
    *, purpose=None, code="decline_likelihood", version="1.0", active=True, activated_at=None, **kw
):
    """A registered model of the 2019 kind (a number from 0 to 100), active (since
    `activated_at`, default a year ago) unless told otherwise."""
    from inferences.services import inference_model_activate

    fields = {
        "name_ja": "内定辞退率の予測",
        "name_en": "Decline likelihood",
        "predicts_ja": "この企業の内定をあなたが辞退する可能性",
        "predicts_en": "How likely you are to decline this company's job offer",
        "data_categories_ja": "閲覧履歴、検索履歴",
        "data_categories_en": "Pages viewed, searches",
        "use_ja": "連絡の優先順位づけにのみ",
        "use_en": "Only to decide whom to contact first",
        "never_ja": "合否の判断には決して使わない",
        "never_en": "Never in a pass/fail decision",
        "output_kind": "number",
        "number_min": 0,
        "number_max": 100,
        "output_meaning_ja": "0〜100の数字。高いほど辞退の可能性が高い",
        "output_meaning_en": "A number from 0 to 100: the higher, the likelier to decline",
        "accountable": "データ分析部長 山本 / Head of Data Analytics",
        **kw,
    }
    if purpose is None:
        purpose = opt_in_purposes()[0]
    model = InferenceModel.objects.create(code=code, version=version, purpose=purpose, **fields)
    if active:
        at = activated_at or timezone.now() - timedelta(days=365)
        model = inference_model_activate(model=model, by=None, at=at)
    return model


class InferenceFactory(factory.django.DjangoModelFactory):
    """A result written straight to the register, as a fixture (the pipeline's go through
    `inferences_record`, which checks the grant): handed over to its employer."""

    class Meta:
        model = "inferences.Inference"

    student = factory.SubFactory(UserFactory)
    model = factory.LazyFunction(
        lambda: (
            InferenceModel.objects.filter(code="decline_likelihood", version="1.0").first()
            or inference_model()
        )
    )
    employer = factory.SubFactory(EmployerFactory)
    output_number = 72.0
    made_at = factory.LazyFunction(timezone.now)
    input_from = factory.LazyAttribute(lambda o: o.made_at - timedelta(days=30))
    input_to = factory.LazyAttribute(lambda o: o.made_at)
    handed_over_at = factory.LazyAttribute(lambda o: o.made_at)
    sender = factory.LazyFunction(
        lambda: api_key_create(name="Analytics pipeline", scopes=["inferences:write"])[0]
    )
    source_id = factory.Sequence(lambda n: f"inf-{n}")
