"""Demo data that tells the 2019 story, and (with --students N) a large set for benchmarks.

    python manage.py seed_demo                  # purposes, employers, 3 policy versions,
                                                # staff + demo student + 30 students
    python manage.py seed_demo --students 100000

Running it again changes nothing: every row is looked up by its natural key (purpose code,
version label, employer name, user email) and only what is missing is created. Policy
versions are published through consent.services.policy_publish and the demo students'
acceptances go through policy_accept, with the historical time they happened. The bulk
students bypass the per-row services (bulk_create), but their acceptances hold the same
invariants: the version's stored hash in the language shown, a valid screen, and a time
after the version took effect.

The portal's apps are wired together here, in the project's shell, so this command may
import consent as well as the core models.
"""

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import reset_queries, transaction
from django.test import override_settings
from django.utils import timezone

from consent.models import PolicyAcceptance, PolicyVersion, Purpose, Screen
from consent.services import (
    consent_grant,
    consent_withdraw,
    policy_accept,
    policy_publish,
    policy_update_draft,
    provision_record,
)
from portal.models import (
    ActivityRecord,
    EmailMessage,
    Employer,
    Language,
    PrivacyContact,
    User,
)

SEED = 2019
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for the demo, on purpose
STAFF_EMAIL = "staff@example.jp"
# One demo login per staff role (groups made by backoffice/migrations/0001_roles.py).
ROLE_LOGINS = (
    ("support@example.jp", "サポート 花子", "Support"),
    ("officer@example.jp", "個人情報保護 責任者", "Privacy officer"),
)
# The demo staff's authenticator app: one well-known secret, so a person adds it to any TOTP
# app (or types the otpauth URL seed_demo prints) and signs in. A demo value, never real.
DEMO_TOTP_SECRET = "DEMODEMODEMODEMODEMODEMODEMODEMO"  # noqa: S105 - printed for the demo
# The job site's own systems, as `make run` starts them (scripts/reference_source.py with
# these ports and secrets; the Makefile has the same values).
DEMO_SOURCES = [
    ("応募管理システム / Applications", "応募履歴 / job applications", 8101, "demo-source-a"),
    ("閲覧履歴基盤 / Browsing history", "閲覧履歴 / job-ad views", 8102, "demo-source-b"),
]
STUDENT_EMAIL = "student@example.jp"
BULK_EMAIL = "bulk-{:07d}@example.jp"
BULK_PREFIX, BULK_SUFFIX = "bulk-", "@example.jp"


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware datetime in the site's time zone (Asia/Tokyo)."""
    return datetime(year, month, day, hour, minute, tzinfo=timezone.get_default_timezone())


# The story's time line: students join from the 2019 graduates' season until the summer
# of 2019, when the sale of "decline likelihood" scores came out.
HISTORY_START = jst(2018, 4, 1, 9)
HISTORY_END = jst(2019, 7, 31, 23)


def lines(*text: str) -> str:
    """A policy body: one line per clause, so a line diff between versions reads well."""
    return "\n".join(text)


# --- Purposes ------------------------------------------------------------------------------

PURPOSES = [
    {
        "code": "account",
        "title_ja": "会員アカウントの管理",
        "title_en": "Managing your account",
        "description_ja": (
            "ログイン、ご本人の確認、登録情報の変更、お問い合わせへの回答のために、"
            "ご登録いただいた情報を利用します。"
        ),
        "description_en": (
            "We use what you registered to let you sign in, confirm it is you, let you change "
            "your details and answer your questions."
        ),
        "data_items_ja": "氏名、メールアドレス、大学・学部・学科、卒業予定年月",
        "data_items_en": "Name, email address, university and faculty, expected graduation",
        "category": "Core Function",
        "requires_opt_in": False,
        "third_party_disclosure": False,
    },
    {
        "code": "job_matching",
        "title_ja": "求人情報の表示と、応募先企業への応募情報の提供",
        "title_en": "Showing you jobs, and sending your application to the company you apply to",
        "description_ja": (
            "ご希望の条件に合う求人やセミナーを表示します。求人に応募したときは、"
            "応募のために入力した情報を、その応募先の企業にだけ提供します。"
        ),
        "description_en": (
            "We show you jobs and seminars that match what you are looking for. When you apply "
            "for a job, we give the information you entered for that application to the "
            "company you applied to, and to no one else."
        ),
        "data_items_ja": "希望条件、エントリーシート・履歴書の記載内容、応募日時",
        "data_items_en": "Job preferences, what you wrote in your application, date applied",
        "category": "Core Function",
        "requires_opt_in": False,
        "third_party_disclosure": True,
    },
    {
        "code": "behaviour_analysis",
        "title_ja": "このサイトでの閲覧履歴を〈企業〉のために分析すること",
        "title_en": "Analysing my browsing on this site for <employer>",
        "description_ja": (
            "このサイトで閲覧した求人・企業ページ、検索した条件、ブックマーク、"
            "セミナー予約などの行動履歴を、あなたが選んだ企業のために分析します。"
            "企業ごとに、あなたが同意した場合にだけ行い、同意はいつでも取り消せます。"
        ),
        "description_en": (
            "We analyse what you did on this site (job and company pages you viewed, searches, "
            "bookmarks, seminar bookings) for a company you choose. We only do it for a company "
            "you have said yes to, and you can withdraw at any time."
        ),
        "data_items_ja": "閲覧履歴、検索履歴、ブックマーク、応募・セミナー予約の履歴",
        "data_items_en": "Pages viewed, searches, bookmarks, applications and seminar bookings",
        "category": "Profiling",
        "requires_opt_in": True,
        "third_party_disclosure": False,
    },
    {
        "code": "provision_to_employer",
        "title_ja": "その分析結果を〈企業〉に提供すること",
        "title_en": "Giving the result of that analysis to <employer>",
        "description_ja": (
            "行動履歴の分析結果（例：その企業への関心の度合い）を、あなたが選んだ企業に"
            "提供します。企業ごとに、あなたが同意した場合にだけ提供し、同意はいつでも"
            "取り消せます。提供した記録はこのポータルで確認できます。"
        ),
        "description_en": (
            "We give the result of the analysis of your activity (for example, how interested "
            "you seem in that company) to a company you choose. We only do it for a company you "
            "have said yes to, you can withdraw at any time, and every provision is listed in "
            "this portal."
        ),
        "data_items_ja": "行動履歴の分析結果（関心度などのスコア）",
        "data_items_en": "The result of the activity analysis (scores such as level of interest)",
        "category": "Marketing Third Parties",
        "requires_opt_in": True,
        "third_party_disclosure": True,
    },
]


# --- Client companies ----------------------------------------------------------------------

EMPLOYERS = [
    # name, English name, corporate number, privacy contacts (the first is the primary):
    # (name or role, email, language)
    (
        "株式会社青葉システムズ",
        "Aoba Systems Co., Ltd.",
        "6011000101013",
        [
            (
                "人事部 個人情報担当 佐々木 真理子",
                "privacy@aoba-systems.example.co.jp",
                Language.JA,
            ),
            (
                "情報システム部 情報セキュリティ担当 岡田 亮",
                "security@aoba-systems.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "株式会社みなと精機",
        "Minato Seiki Co., Ltd.",
        "1011000101050",
        [
            (
                "総務部 個人情報保護窓口 大野 浩二",
                "kojinjoho@minato-seiki.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "桜川フーズ株式会社",
        "Sakuragawa Foods Co., Ltd.",
        "6011000101087",
        [
            (
                "人事部 採用グループ 小松 由紀",
                "saiyo-privacy@sakuragawa-foods.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "株式会社北斗ロジスティクス",
        "Hokuto Logistics Co., Ltd.",
        "2011000101124",
        [
            ("人財開発部 個人情報担当 西村 健一", "privacy@hokuto-logi.example.co.jp", Language.JA),
        ],
    ),
    (
        "株式会社白樺フィナンシャルグループ",
        "Shirakaba Financial Group, Inc.",
        "6011000101161",
        [
            (
                "コンプライアンス部 個人情報管理責任者 原田 恵",
                "privacy-office@shirakaba-fg.example.co.jp",
                Language.JA,
            ),
            ("人事部 新卒採用グループ 森 美咲", "saiyo@shirakaba-fg.example.co.jp", Language.JA),
        ],
    ),
    (
        "株式会社ひかり広告社",
        "Hikari Advertising Inc.",
        "2011000101198",
        [
            ("管理本部 個人情報担当 河野 さやか", "privacy@hikari-ad.example.jp", Language.JA),
        ],
    ),
    (
        "東雲建設株式会社",
        "Shinonome Construction Co., Ltd.",
        "7011000101235",
        [
            (
                "人事部 個人情報保護担当 松井 隆之",
                "jinji-privacy@shinonome-kensetsu.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "株式会社若葉メディカル",
        "Wakaba Medical Co., Ltd.",
        "2011000101272",
        [
            (
                "人事総務部 個人情報担当 今井 直子",
                "privacy@wakaba-medical.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "株式会社つばさトラベル",
        "Tsubasa Travel Co., Ltd.",
        "8011000101309",
        [
            (
                "人事部 採用担当 個人情報窓口 武田 翔平",
                "saiyo@tsubasa-travel.example.jp",
                Language.JA,
            ),
            ("Group Data Protection, Emma Clarke", "dpo@tsubasa-travel.example.jp", Language.EN),
        ],
    ),
    (
        "朝霧エレクトロニクス株式会社",
        "Asagiri Electronics Corporation",
        "3011000101346",
        [
            (
                "法務部 個人情報保護管理者 菅原 智子",
                "privacy@asagiri-elec.example.co.jp",
                Language.JA,
            ),
        ],
    ),
    (
        "ノースブリッジ・コンサルティング・ジャパン株式会社",
        "Northbridge Consulting Japan K.K.",
        "7011000101383",
        [
            ("Privacy Office, Kenji Morita", "privacy-japan@northbridge.example.com", Language.EN),
            ("人事部 採用担当 石井 美穂", "saiyo-japan@northbridge.example.com", Language.JA),
        ],
    ),
    (
        "ハーバーレーン・ソフトウェア合同会社",
        "Harbor Lane Software G.K.",
        "3011000101420",
        [
            (
                "People Team, Data Protection Officer Aya Fujimoto",
                "dpo@harborlane.example.com",
                Language.EN,
            ),
        ],
    ),
]


# --- Policy versions -----------------------------------------------------------------------

POLICY_TITLE_JA = "サンプル就活ナビ 個人情報の取扱いについて（プライバシーポリシー）"
POLICY_TITLE_EN = "Sample Shukatsu Navi Privacy Policy"

BODY_2018_04_JA = lines(
    "株式会社サンプル就活ナビ（以下「当社」）は、就職情報サイト「サンプル就活ナビ」",
    "（以下「本サイト」）をご利用になる皆さまの個人情報を、次のとおり取り扱います。",
    "",
    "1. 取得する情報",
    "当社は、会員登録のときに、氏名、メールアドレス、生年月日、大学・学部・学科、",
    "卒業予定年月を取得します。",
    "本サイトで求人に応募するときは、応募のために入力された情報を取得します。",
    "",
    "2. 利用目的",
    "当社は、取得した情報を次の目的で利用します。",
    "(1) 会員アカウントの管理、ご本人の確認、お問い合わせへの対応",
    "(2) ご希望の条件に合った求人情報・セミナー情報の表示とご案内",
    "(3) 本サイトの改善のための統計（個人を特定できない形に限ります）",
    "",
    "3. 第三者提供",
    "当社は、皆さまが求人に応募したときに限り、その応募先の企業に、",
    "応募のために入力された情報を提供します。",
    "この場合と法令に基づく場合を除き、ご本人の同意なく個人情報を第三者に提供しません。",
    "",
    "4. 開示等の請求",
    "皆さまは、当社が保有するご自身の個人情報の開示、訂正、利用停止、消去を請求できます。",
    "請求は下記の窓口で受け付け、当社は原則として14日以内に回答します。",
    "",
    "5. お問い合わせ",
    "株式会社サンプル就活ナビ 個人情報保護管理者",
    "メールアドレス: privacy@example.jp",
    "",
    "2018年4月1日 制定",
)

BODY_2018_04_EN = lines(
    'Sample Shukatsu Navi K.K. ("we") handles the personal information of everyone who uses',
    'the job-information site "Sample Shukatsu Navi" (the "Site") as follows.',
    "",
    "1. Information we collect",
    "When you register, we collect your name, email address, date of birth, university,",
    "faculty and department, and expected graduation date.",
    "When you apply for a job on the Site, we collect what you enter for that application.",
    "",
    "2. How we use it",
    "We use the information we collect for the following purposes.",
    "(1) Managing your account, confirming your identity and answering your questions",
    "(2) Showing you, and telling you about, jobs and seminars that match your preferences",
    "(3) Statistics to improve the Site (only in a form that does not identify you)",
    "",
    "3. Giving information to third parties",
    "Only when you apply for a job do we give the company you applied to",
    "the information you entered for that application.",
    "Apart from this and where the law requires it, we never give your personal information",
    "to a third party without your consent.",
    "",
    "4. Your rights",
    "You may ask us to disclose, correct, stop using or delete the personal information we",
    "hold about you. Send your request to the contact below; we answer within 14 days.",
    "",
    "5. Contact",
    "Personal Information Protection Manager, Sample Shukatsu Navi K.K.",
    "Email: privacy@example.jp",
    "",
    "Established 1 April 2018",
)

# 2018.10: clarifications only, nothing new is collected, used or shared (not material).
BODY_2018_10_JA = lines(
    "株式会社サンプル就活ナビ（以下「当社」）は、就職情報サイト「サンプル就活ナビ」",
    "（以下「本サイト」）をご利用になる皆さまの個人情報を、次のとおり取り扱います。",
    "",
    "1. 取得する情報",
    "当社は、会員登録のときに、氏名、メールアドレス、生年月日、大学・学部・学科、",
    "卒業予定年月を取得します。",
    "本サイトで求人に応募するときは、エントリーシートなど、応募のために入力された情報を取得します。",
    "",
    "2. 利用目的",
    "当社は、取得した情報を次の目的で利用し、それ以外の目的には利用しません。",
    "(1) 会員アカウントの管理、ログイン時のご本人の確認、お問い合わせへの対応",
    "(2) ご希望の条件に合った求人情報・セミナー情報の表示と、メールでのご案内",
    "(3) 本サイトの改善のための統計（個人を特定できない形に限ります）",
    "",
    "3. 第三者提供",
    "当社は、皆さまが求人に応募したときに限り、その応募先の企業に、",
    "応募のために入力された情報を提供します。応募していない企業には提供しません。",
    "この場合と法令に基づく場合を除き、ご本人の同意なく個人情報を第三者に提供しません。",
    "",
    "4. 開示等の請求",
    "皆さまは、当社が保有するご自身の個人情報の開示、訂正、利用停止、消去を請求できます。",
    "請求は下記の窓口で受け付け、当社は原則として14日以内に、ご登録のメールアドレスに回答します。",
    "",
    "5. お問い合わせ",
    "株式会社サンプル就活ナビ 個人情報保護管理者",
    "メールアドレス: privacy@example.jp",
    "受付時間: 平日 10:00〜18:00（年末年始を除きます）",
    "",
    "2018年4月1日 制定",
    "2018年10月1日 改定",
)

BODY_2018_10_EN = lines(
    'Sample Shukatsu Navi K.K. ("we") handles the personal information of everyone who uses',
    'the job-information site "Sample Shukatsu Navi" (the "Site") as follows.',
    "",
    "1. Information we collect",
    "When you register, we collect your name, email address, date of birth, university,",
    "faculty and department, and expected graduation date.",
    "When you apply for a job on the Site, we collect what you enter for that application,",
    "such as your entry sheet.",
    "",
    "2. How we use it",
    "We use the information we collect for the following purposes, and for nothing else.",
    "(1) Managing your account, confirming your identity when you sign in and answering your",
    "questions",
    "(2) Showing you, and emailing you about, jobs and seminars that match your preferences",
    "(3) Statistics to improve the Site (only in a form that does not identify you)",
    "",
    "3. Giving information to third parties",
    "Only when you apply for a job do we give the company you applied to",
    "the information you entered for that application. Companies you did not apply to get",
    "nothing.",
    "Apart from this and where the law requires it, we never give your personal information",
    "to a third party without your consent.",
    "",
    "4. Your rights",
    "You may ask us to disclose, correct, stop using or delete the personal information we",
    "hold about you. Send your request to the contact below; we answer within 14 days, by",
    "email to the address you registered.",
    "",
    "5. Contact",
    "Personal Information Protection Manager, Sample Shukatsu Navi K.K.",
    "Email: privacy@example.jp",
    "Hours: weekdays 10:00-18:00 (closed over the New Year holidays)",
    "",
    "Established 1 April 2018",
    "Revised 1 October 2018",
)

# 2019.03: the change of the story. Behaviour data is analysed and the result given to
# client companies; here, unlike in 2019, only per company and only with separate consent.
BODY_2019_03_JA = lines(
    "株式会社サンプル就活ナビ（以下「当社」）は、就職情報サイト「サンプル就活ナビ」",
    "（以下「本サイト」）をご利用になる皆さまの個人情報を、次のとおり取り扱います。",
    "",
    "1. 取得する情報",
    "当社は、会員登録のときに、氏名、メールアドレス、生年月日、大学・学部・学科、",
    "卒業予定年月を取得します。",
    "本サイトで求人に応募するときは、エントリーシートなど、応募のために入力された情報を取得します。",
    "本サイトでの閲覧履歴、検索履歴、ブックマーク、応募・セミナー予約の履歴（以下「行動履歴」）を取得します。",
    "",
    "2. 利用目的",
    "当社は、取得した情報を次の目的で利用し、それ以外の目的には利用しません。",
    "(1) 会員アカウントの管理、ログイン時のご本人の確認、お問い合わせへの対応",
    "(2) ご希望の条件に合った求人情報・セミナー情報の表示と、メールでのご案内",
    "(3) 本サイトの改善のための統計（個人を特定できない形に限ります）",
    "(4) 皆さまが同意した企業のために、行動履歴を分析すること",
    "",
    "3. 第三者提供",
    "当社は、皆さまが求人に応募したときに限り、その応募先の企業に、",
    "応募のために入力された情報を提供します。応募していない企業には提供しません。",
    "行動履歴の分析結果（その企業への関心の度合いなど）は、皆さまが企業ごとに同意した場合に限り、",
    "その企業にだけ提供します。この同意は会員登録や応募の条件ではなく、初期設定では同意していない状態です。",
    "同意はマイページからいつでも取り消すことができ、取り消した後は提供しません。",
    "当社は、いつ、どの企業に、何を提供したかを記録し、マイページで確認できるようにします。",
    "これらの場合と法令に基づく場合を除き、ご本人の同意なく個人情報を第三者に提供しません。",
    "",
    "4. 開示等の請求",
    "皆さまは、当社が保有するご自身の個人情報の開示、訂正、利用停止、消去を請求できます。",
    "提供先の企業が保有する情報についても、当社が各企業に請求を伝え、対応の結果をお知らせします。",
    "請求は下記の窓口で受け付け、当社は原則として14日以内に、ご登録のメールアドレスに回答します。",
    "",
    "5. お問い合わせ",
    "株式会社サンプル就活ナビ 個人情報保護管理者",
    "メールアドレス: privacy@example.jp",
    "受付時間: 平日 10:00〜18:00（年末年始を除きます）",
    "",
    "2018年4月1日 制定",
    "2018年10月1日 改定",
    "2019年3月1日 改定",
)

BODY_2019_03_EN = lines(
    'Sample Shukatsu Navi K.K. ("we") handles the personal information of everyone who uses',
    'the job-information site "Sample Shukatsu Navi" (the "Site") as follows.',
    "",
    "1. Information we collect",
    "When you register, we collect your name, email address, date of birth, university,",
    "faculty and department, and expected graduation date.",
    "When you apply for a job on the Site, we collect what you enter for that application,",
    "such as your entry sheet.",
    "We collect what you do on the Site: pages viewed, searches, bookmarks, applications and",
    'seminar bookings ("activity data").',
    "",
    "2. How we use it",
    "We use the information we collect for the following purposes, and for nothing else.",
    "(1) Managing your account, confirming your identity when you sign in and answering your",
    "questions",
    "(2) Showing you, and emailing you about, jobs and seminars that match your preferences",
    "(3) Statistics to improve the Site (only in a form that does not identify you)",
    "(4) Analysing your activity data for a company, if you have agreed to it for that company",
    "",
    "3. Giving information to third parties",
    "Only when you apply for a job do we give the company you applied to",
    "the information you entered for that application. Companies you did not apply to get",
    "nothing.",
    "We give the result of the analysis of your activity data (such as how interested you",
    "seem in a company) to a company only if you have agreed to it for that company.",
    "This consent is not a condition of registering or applying, and it is off unless you",
    "turn it on.",
    "You can withdraw it at any time from My Page; after that, we give that company nothing.",
    "We record when we gave what to which company, and show you the record on My Page.",
    "Apart from these cases and where the law requires it, we never give your personal",
    "information to a third party without your consent.",
    "",
    "4. Your rights",
    "You may ask us to disclose, correct, stop using or delete the personal information we",
    "hold about you. For information held by companies we gave it to, we pass your request",
    "on to each of them and tell you how each one answered.",
    "Send your request to the contact below; we answer within 14 days, by email to the",
    "address you registered.",
    "",
    "5. Contact",
    "Personal Information Protection Manager, Sample Shukatsu Navi K.K.",
    "Email: privacy@example.jp",
    "Hours: weekdays 10:00-18:00 (closed over the New Year holidays)",
    "",
    "Established 1 April 2018",
    "Revised 1 October 2018",
    "Revised 1 March 2019",
)

SUMMARY_2018_10_JA = (
    "表現をわかりやすくしました。取得する情報、利用目的、提供先に変更はありません。"
)
SUMMARY_2018_10_EN = (
    "Clearer wording only. What we collect, why we use it and who receives it are unchanged."
)
SUMMARY_2019_03_JA = lines(
    "新しい利用目的を2つ追加しました。",
    "・このサイトでの閲覧履歴などの行動履歴を、あなたが選んだ企業のために分析すること",
    "・その分析結果を、あなたが選んだ企業に提供すること",
    "どちらも企業ごとに、あなたが同意した場合にだけ行います。初期設定はすべて「同意しない」で、",
    "同意はいつでもマイページから取り消せます。このポリシーへの同意だけでは、どの企業にも提供しません。",
)
SUMMARY_2019_03_EN = lines(
    "Two new purposes:",
    "- analysing your activity on this site for a company you choose;",
    "- giving the result of that analysis to a company you choose.",
    "Both happen only for a company you have said yes to. Everything is off until you turn it",
    "on, and you can withdraw at any time from My Page. Accepting this policy alone gives",
    "nothing to any company.",
)


@dataclass(frozen=True)
class VersionSpec:
    label: str
    body_ja: str
    body_en: str
    summary_ja: str
    summary_en: str
    purposes: tuple[str, ...]
    material: bool
    effective_at: datetime
    published_at: datetime


VERSIONS = [
    VersionSpec(
        label="2018.04",
        body_ja=BODY_2018_04_JA,
        body_en=BODY_2018_04_EN,
        summary_ja="",
        summary_en="",
        purposes=("account", "job_matching"),
        material=False,
        effective_at=jst(2018, 4, 1),
        published_at=jst(2018, 3, 15, 10),
    ),
    VersionSpec(
        label="2018.10",
        body_ja=BODY_2018_10_JA,
        body_en=BODY_2018_10_EN,
        summary_ja=SUMMARY_2018_10_JA,
        summary_en=SUMMARY_2018_10_EN,
        purposes=("account", "job_matching"),
        material=False,
        effective_at=jst(2018, 10, 1),
        published_at=jst(2018, 9, 14, 10),
    ),
    VersionSpec(
        label="2019.03",
        body_ja=BODY_2019_03_JA,
        body_en=BODY_2019_03_EN,
        summary_ja=SUMMARY_2019_03_JA,
        summary_en=SUMMARY_2019_03_EN,
        purposes=("account", "job_matching", "behaviour_analysis", "provision_to_employer"),
        material=True,
        effective_at=jst(2019, 3, 1),
        published_at=jst(2019, 2, 15, 10),
    ),
]


# --- People --------------------------------------------------------------------------------

STUDENT_NAMES = [
    "佐藤 健太",
    "鈴木 美咲",
    "高橋 翔",
    "田中 陽菜",
    "伊藤 大輝",
    "渡辺 さくら",
    "中村 蓮",
    "小林 結衣",
    "加藤 悠斗",
    "吉田 葵",
    "山本 拓海",
    "松本 美月",
    "井上 颯太",
    "木村 彩花",
    "林 海斗",
    "斎藤 七海",
    "清水 陸",
    "山口 杏奈",
    "森 大和",
    "池田 莉子",
    "橋本 湊",
    "阿部 紗希",
    "石川 亮介",
    "前田 千尋",
    "藤田 直樹",
    "小川 遥",
    "岡田 智也",
    "後藤 芽衣",
    "長谷川 航",
    "村上 真由",
]
# A few students read the site in English (exchange students, returnees).
ENGLISH_STUDENTS = {4, 13, 22}

SURNAMES = [
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
    "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水",
    "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島", "石井", "小川",
]  # fmt: skip
GIVEN_NAMES = [
    "大翔", "蓮", "悠真", "陽翔", "湊", "樹", "悠人", "朝陽", "奏太", "陸",
    "陽葵", "凛", "詩", "結菜", "芽依", "結愛", "莉子", "紬", "澪", "葵",
    "健太", "美咲", "翔", "さくら", "拓海", "彩花", "直樹", "遥", "智也", "真由",
]  # fmt: skip

IP_ADDRESSES = [f"192.0.2.{n}" for n in range(1, 255)] + [
    f"198.51.100.{n}" for n in range(1, 255)
]  # documentation ranges (RFC 5737)
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 8.0.0; SO-01K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/70.0.3538.110 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/71.0.3578.98 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/12.0.2 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:64.0) Gecko/20100101 Firefox/64.0",
]

# --- Behaviour data ------------------------------------------------------------------------

KINDS = [k for k, _label in ActivityRecord.Kind.choices]
KIND_WEIGHTS = {
    "page_view": 40,
    "search": 20,
    "job_view": 20,
    "bookmark": 8,
    "application": 6,
    "seminar": 6,
}
# Behaviour about one company; page views and searches are only sometimes.
EMPLOYER_KINDS = {"job_view", "bookmark", "application", "seminar"}
PAGES = [
    "/",
    "/mypage/",
    "/jobs/?industry=it",
    "/jobs/?industry=manufacturing",
    "/jobs/?industry=finance",
    "/jobs/?area=tokyo",
    "/jobs/?area=osaka",
    "/articles/entry-sheet-tips/",
    "/articles/interview-manners/",
    "/articles/self-analysis/",
    "/seminars/",
    "/internships/summer-2018/",
]
SEARCHES = [
    "東京 エンジニア 新卒",
    "メーカー 営業 大阪",
    "金融 総合職",
    "夏 インターンシップ",
    "IT 文系 歓迎",
    "商社 海外勤務",
    "食品 商品企画",
    "福岡 本社 企業",
    "転勤なし 事務職",
    "研究開発 化学",
    "広告 クリエイティブ",
    "物流 企画",
]
JOBS = [
    "総合職（事務系）",
    "総合職（技術系）",
    "システムエンジニア",
    "営業職",
    "研究開発職",
    "生産技術職",
    "商品企画職",
    "経理・財務",
    "人事・総務",
    "データアナリスト",
]
SEMINARS = [
    "会社説明会（東京会場）",
    "会社説明会（大阪会場）",
    "オンライン会社説明会",
    "1day 仕事体験",
    "先輩社員座談会",
]


def activity_detail(rng: random.Random, kind: str, employer_name: str | None) -> str:
    if kind == "page_view":
        return f"企業ページ: {employer_name}" if employer_name else rng.choice(PAGES)
    if kind == "search":
        return f"検索: {employer_name or rng.choice(SEARCHES)}"
    if kind == "job_view":
        return f"求人閲覧: {rng.choice(JOBS)}"
    if kind == "bookmark":
        return f"ブックマーク: {rng.choice(JOBS)}"
    if kind == "application":
        return f"エントリー: {rng.choice(JOBS)}"
    return f"予約: {rng.choice(SEMINARS)}"


def random_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = (end - start).total_seconds()
    return start + timedelta(seconds=int(rng.random() * max(span, 0)))


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


class Command(BaseCommand):
    help = (
        "Create demo data (purposes, client companies, the 2018.04/2018.10/2019.03 policy "
        "versions, a staff user and students with acceptances and activity). Safe to run "
        "again. --students N adds N bulk students for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--students",
            type=int,
            default=0,
            metavar="N",
            help="Also make N bulk students (bulk-NNNNNNN@example.jp) for benchmarks.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=2000,
            help="Bulk students created per transaction (default 2000).",
        )

    def handle(self, *args, students: int = 0, batch_size: int = 2000, **options):
        if students < 0:
            raise CommandError("--students must be 0 or more")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        self.created: dict[str, int] = {}
        rng = random.Random(SEED)
        # One hash for everybody: PBKDF2 is slow on purpose, and they share the password.
        self.password_hash = make_password(DEMO_PASSWORD)

        with transaction.atomic():
            purposes = self.seed_purposes()
            employers = self.seed_employers()
            staff = self.seed_user(
                STAFF_EMAIL,
                "サポート 太郎",
                Language.JA,
                jst(2018, 3, 1, 9),
                is_staff=True,
                is_superuser=True,
            )
            self.seed_second_factor(staff)
            for email, name, group in ROLE_LOGINS:
                user = self.seed_user(email, name, Language.JA, jst(2018, 3, 1, 9), is_staff=True)
                user.groups.add(Group.objects.get(name=group))
                self.seed_second_factor(user)
            versions = self.seed_versions(purposes, staff)
            self.seed_students(rng, versions, employers)
        # The receipts and stop-use notices these changes queue (sent when the transaction
        # commits) go to fictional addresses: keep them off the console.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            with transaction.atomic():
                self.seed_consents(purposes, employers)
            self.seed_requests()
        # After the demo's requests: those predate the sources and so never call them.
        self.seed_sources()

        self.stdout.write(self.summary())
        if students:
            self.seed_bulk(students, batch_size, versions, employers)
        self.print_logins()

    # --- helpers ---------------------------------------------------------------------------

    def count(self, what: str, created: bool | int = True) -> None:
        self.created[what] = self.created.get(what, 0) + int(created)

    def summary(self) -> str:
        parts = [f"{name} {n:,}" for name, n in self.created.items() if n]
        if not parts:
            return "Demo data already present; nothing to add."
        return "Created: " + ", ".join(parts) + "."

    def seed_purposes(self) -> dict[str, Purpose]:
        purposes = {}
        for spec in PURPOSES:
            fields = dict(spec)
            code = fields.pop("code")
            purpose, created = Purpose.objects.get_or_create(code=code, defaults=fields)
            self.count("purposes", created)
            purposes[code] = purpose
        return purposes

    def seed_employers(self) -> list[Employer]:
        employers = []
        for index, (name, name_en, number, contacts) in enumerate(EMPLOYERS):
            employer, created = Employer.objects.get_or_create(
                name=name,
                defaults={
                    "name_en": name_en,
                    "corporate_number": number,
                    "created_at": jst(2017, 12, 1, 10) + timedelta(days=7 * index),
                },
            )
            self.count("employers", created)
            if employer.corporate_number is None:  # made before corporate numbers
                employer.corporate_number = number
                employer.save(update_fields=["corporate_number"])
            if not employer.contacts.exists():
                PrivacyContact.objects.bulk_create(
                    PrivacyContact(
                        employer=employer,
                        name=contact,
                        email=email,
                        language=language,
                        is_primary=position == 0,
                        created_at=employer.created_at,
                    )
                    for position, (contact, email, language) in enumerate(contacts)
                )
                self.count("privacy contacts", len(contacts))
            employers.append(employer)
        return employers

    def seed_user(
        self,
        email: str,
        display_name: str,
        language: str,
        joined: datetime,
        *,
        is_staff: bool = False,
        is_superuser: bool = False,
    ) -> User:
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
            TOTP.activate(user, DEMO_TOTP_SECRET)
            self.count("authenticator apps", True)
        if not Authenticator.objects.filter(
            user=user, type=Authenticator.Type.RECOVERY_CODES
        ).exists():
            RecoveryCodes.activate(user)
            self.count("recovery code sets", True)

    def recovery_codes_left(self, email: str) -> list[str]:
        codes = Authenticator.objects.filter(
            user__email=email, type=Authenticator.Type.RECOVERY_CODES
        ).first()
        return codes.wrap().get_unused_codes() if codes else []

    def seed_versions(self, purposes: dict[str, Purpose], staff: User) -> dict[str, PolicyVersion]:
        versions = {}
        for spec in VERSIONS:
            fields = {
                "title_ja": POLICY_TITLE_JA,
                "title_en": POLICY_TITLE_EN,
                "body_ja": spec.body_ja,
                "body_en": spec.body_en,
                "summary_ja": spec.summary_ja,
                "summary_en": spec.summary_en,
                "material": spec.material,
                "effective_at": spec.effective_at,
            }
            version = PolicyVersion.objects.filter(label=spec.label).first()
            if version is not None and version.is_published:
                versions[spec.label] = version
                continue
            spec_purposes = [purposes[code] for code in spec.purposes]
            if version is None:
                version = PolicyVersion(
                    label=spec.label, created_at=spec.published_at - timedelta(days=10), **fields
                )
                version.save()
                version.purposes.set(spec_purposes)
            else:  # a draft left by someone: make it the story's text before publishing
                version = policy_update_draft(version=version, purposes=spec_purposes, **fields)
            versions[spec.label] = policy_publish(version=version, by=staff, at=spec.published_at)
            self.count("policy versions")
        return versions

    # --- the demo students -----------------------------------------------------------------

    def plan_students(self, rng: random.Random) -> list[StudentPlan]:
        """Who joined when and accepted what. Pure data, the same on every run."""
        oct_2018, mar_2019 = VERSIONS[1].effective_at, VERSIONS[2].effective_at
        plans = [
            # The demo: accepted 2018.04 at sign-up and reviewed 2018.10 from the dashboard,
            # but has not accepted 2019.03, so logging in asks for it.
            StudentPlan(
                email=STUDENT_EMAIL,
                display_name="山田 花子",
                language=Language.JA,
                joined=jst(2018, 4, 12, 10, 23),
                acceptances=(
                    PlannedAcceptance("2018.04", Screen.SIGNUP, jst(2018, 4, 12, 10, 25)),
                    PlannedAcceptance("2018.10", Screen.REVIEW, jst(2018, 11, 5, 21, 14)),
                ),
                activity_count=48,
            )
        ]
        for index, name in enumerate(STUDENT_NAMES):
            # Three groups of ten: accepted only 2018.04, up to 2018.10, up to 2019.03.
            group = index % 3
            if group == 0:
                joined = random_time(rng, HISTORY_START, jst(2018, 9, 20))
            elif group == 1:
                joined = random_time(rng, HISTORY_START, jst(2019, 2, 10))
            else:
                joined = random_time(rng, HISTORY_START, jst(2019, 6, 30))
            signed_up = joined + timedelta(minutes=rng.randint(1, 15))
            first = (
                "2018.04" if joined < oct_2018 else "2018.10" if joined < mar_2019 else "2019.03"
            )
            accepted = [PlannedAcceptance(first, Screen.SIGNUP, signed_up)]
            if group >= 1 and first == "2018.04":
                screen = rng.choice([Screen.REVIEW, Screen.APPLICATION])
                start = max(oct_2018, signed_up) + timedelta(hours=1)
                at = random_time(rng, start, jst(2019, 2, 28, 12))
                accepted.append(PlannedAcceptance("2018.10", screen, at))
            if group == 2 and first != "2019.03":
                start = max(mar_2019, accepted[-1].at) + timedelta(hours=1)
                at = random_time(rng, start, jst(2019, 6, 30))
                accepted.append(PlannedAcceptance("2019.03", Screen.RECONSENT, at))
            plans.append(
                StudentPlan(
                    email=f"student{index + 1:03d}@example.jp",
                    display_name=name,
                    language=Language.EN if index in ENGLISH_STUDENTS else Language.JA,
                    joined=joined,
                    acceptances=tuple(accepted),
                    activity_count=rng.randint(20, 60),
                )
            )
        return plans

    def seed_students(
        self,
        rng: random.Random,
        versions: dict[str, PolicyVersion],
        employers: list[Employer],
    ) -> None:
        for plan in self.plan_students(rng):
            # The same draws happen whether or not the student exists, so the data a run
            # creates never depends on what an earlier run left.
            student_rng = random.Random(f"{SEED}:{plan.email}")
            user = self.seed_user(plan.email, plan.display_name, plan.language, plan.joined)
            for planned in plan.acceptances:
                version = versions[planned.label]
                ip_address = student_rng.choice(IP_ADDRESSES)
                user_agent = student_rng.choice(USER_AGENTS)
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
                records = self.activity(
                    student_rng, user.pk, plan.joined, plan.activity_count, employers
                )
                ActivityRecord.objects.bulk_create(records)
                self.count("activity records", len(records))

    def seed_consents(self, purposes: dict[str, Purpose], employers: list[Employer]) -> None:
        """Per-employer consent for the students who accepted 2019.03: grants for some of the
        companies they applied to, provisions under some of them, and a withdrawal."""
        analysis, provision = purposes["behaviour_analysis"], purposes["provision_to_employer"]
        students = (
            User.objects.filter(
                email__startswith="student0", policy_acceptances__version__label="2019.03"
            )
            .exclude(consent_events__isnull=False)
            .order_by("email")
            .distinct()
        )
        for index, student in enumerate(students):
            student_rng = random.Random(f"{SEED}:consent:{student.email}")
            applied = list(
                Employer.objects.filter(
                    activity_records__student=student,
                    activity_records__kind=ActivityRecord.Kind.APPLICATION,
                )
                .distinct()
                .order_by("name")
            ) or [student_rng.choice(employers)]
            chosen = applied[: student_rng.randint(1, 3)]
            for position, employer in enumerate(chosen):
                consent_grant(student=student, employer=employer, purpose=analysis)
                self.count("consent events")
                if position % 2 == 0:
                    consent_grant(student=student, employer=employer, purpose=provision)
                    provision_record(
                        student=student,
                        employer=employer,
                        purpose=provision,
                        data_items="行動履歴の分析結果（関心度スコア）",
                    )
                    self.count("consent events")
                    self.count("provisions")
            if index % 3 == 0:
                consent_withdraw(student=student, employer=chosen[0], purpose=provision)
                self.count("consent events")

    def seed_requests(self) -> None:
        """Three requests for the story: a deletion one company has answered and one has not
        yet, a disclosure whose report the portal has prepared, and a cessation filed 17
        days ago that a company let run past its due date (the dashboard's "overdue")."""
        from disclosure.models import DataRequest, RecipientTask, RequestEvent
        from disclosure.services import recipient_task_answer, request_file, requests_sweep

        with_provisions = list(
            User.objects.filter(provisions__isnull=False, email__startswith="student0")
            .distinct()
            .order_by("email")[:3]
        )
        if (
            len(with_provisions) < 3
            or DataRequest.objects.filter(student__in=with_provisions).exists()
        ):
            return
        deleting, disclosing, ceasing = with_provisions
        with transaction.atomic():
            request = request_file(student=deleting, kind=DataRequest.Kind.DELETION)
        self.count("data requests")
        first = request.tasks.select_related("employer").first()
        if first is not None:
            with transaction.atomic():
                recipient_task_answer(
                    task=first,
                    answer="deleted",
                    answered_by="人事部 個人情報担当 佐藤",
                    statement="受領したデータと派生スコアをすべて削除しました。",
                )
        with transaction.atomic():
            request_file(student=disclosing, kind=DataRequest.Kind.DISCLOSURE)
        self.count("data requests")
        with transaction.atomic():
            late = request_file(student=ceasing, kind=DataRequest.Kind.CESSATION)
            # Filed "17 days ago": move this fresh request's own times back, then let the
            # sweep do what it would have done (a reminder, the overdue mark, staff told).
            back = timedelta(days=17)
            DataRequest.objects.filter(pk=late.pk).update(
                submitted_at=late.submitted_at - back, due_at=late.due_at - back
            )
            for task in RecipientTask.objects.filter(request=late).select_related("email"):
                RecipientTask.objects.filter(pk=task.pk).update(
                    created_at=task.created_at - back,
                    sent_at=task.sent_at - back if task.sent_at else None,
                )
                if task.email is not None:
                    EmailMessage.objects.filter(pk=task.email.pk).update(
                        created_at=task.email.created_at - back,
                        sent_at=task.email.sent_at - back if task.email.sent_at else None,
                    )
            for event in RequestEvent.objects.filter(request=late):
                RequestEvent.objects.filter(pk=event.pk).update(at=event.at - back)
        self.count("data requests")
        requests_sweep()

    @staticmethod
    def activity(
        rng: random.Random,
        student_id: int,
        joined: datetime,
        count: int,
        employers: list[Employer],
    ) -> list[ActivityRecord]:
        weights = [KIND_WEIGHTS[kind] for kind in KINDS]
        records = []
        for kind in rng.choices(KINDS, weights, k=count):
            employer = None
            if kind in EMPLOYER_KINDS or rng.random() < 0.3:
                employer = rng.choice(employers)
            records.append(
                ActivityRecord(
                    student_id=student_id,
                    employer_id=employer.pk if employer else None,
                    kind=kind,
                    detail=activity_detail(rng, kind, employer.name if employer else None),
                    occurred_at=random_time(rng, joined, HISTORY_END),
                )
            )
        return records

    # --- bulk students for benchmarks ------------------------------------------------------

    def seed_bulk(
        self,
        total: int,
        batch_size: int,
        versions: dict[str, PolicyVersion],
        employers: list[Employer],
    ) -> None:
        """Make sure bulk-0000001 … bulk-<total> exist; create the missing ones in batches."""
        started = time.monotonic()
        existing = set(
            User.objects.filter(
                email__startswith=BULK_PREFIX, email__endswith=BULK_SUFFIX
            ).values_list("email", flat=True)
        )
        missing = [n for n in range(1, total + 1) if BULK_EMAIL.format(n) not in existing]
        if not missing:
            self.stdout.write(f"All {total:,} bulk students already exist.")
            return
        rng = random.Random(SEED)
        ordered = sorted(versions.values(), key=lambda v: v.effective_at)
        done = 0
        self.progress(done, len(missing))
        for offset in range(0, len(missing), batch_size):
            batch = missing[offset : offset + batch_size]
            with transaction.atomic():
                self.bulk_batch(rng, batch, ordered, employers, batch_size)
            reset_queries()  # with DEBUG on, the logged INSERTs would pile up in memory
            done += len(batch)
            self.progress(done, len(missing))
        elapsed = time.monotonic() - started
        self.stdout.write("")
        self.stdout.write(
            f"Created {len(missing):,} bulk students in {elapsed:.1f} s "
            f"({total - len(missing):,} existed already)."
        )

    def progress(self, done: int, total: int, width: int = 30) -> None:
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        self.stdout.write(f"\r[{bar}] {done:,}/{total:,} students", ending="")
        self.stdout.flush()

    def bulk_batch(
        self,
        rng: random.Random,
        numbers: list[int],
        versions: list[PolicyVersion],
        employers: list[Employer],
        batch_size: int,
    ) -> None:
        users = []
        for n in numbers:
            users.append(
                User(
                    email=BULK_EMAIL.format(n),
                    display_name=f"{rng.choice(SURNAMES)} {rng.choice(GIVEN_NAMES)}",
                    password=self.password_hash,
                    language=Language.EN if rng.random() < 0.05 else Language.JA,
                    date_joined=random_time(rng, HISTORY_START, HISTORY_END),
                )
            )
        User.objects.bulk_create(users, batch_size=batch_size)
        if any(user.pk is None for user in users):  # a backend that returns no ids
            ids = dict(
                User.objects.filter(email__in=[u.email for u in users]).values_list("email", "pk")
            )
            for user in users:
                user.pk = ids[user.email]

        addresses, acceptances, records = [], [], []
        for user in users:
            addresses.append(
                EmailAddress(user_id=user.pk, email=user.email, verified=True, primary=True)
            )
            acceptances.extend(self.bulk_acceptances(rng, user, versions))
            records.extend(
                self.activity(rng, user.pk, user.date_joined, rng.randint(6, 14), employers)
            )
        EmailAddress.objects.bulk_create(addresses, batch_size=batch_size)
        PolicyAcceptance.objects.bulk_create(acceptances, batch_size=batch_size)
        ActivityRecord.objects.bulk_create(records, batch_size=batch_size)

    @staticmethod
    def bulk_acceptances(
        rng: random.Random, user: User, versions: list[PolicyVersion]
    ) -> list[PolicyAcceptance]:
        """Sign-up on the version in force when the student joined, then maybe the later ones.

        Each acceptance is after its version took effect and before the next one did (or
        before the end of the story), so the history reads like it happened.
        """
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
                    seconds=rng.randint(60, 900)
                )
            else:
                # A material change is asked for at the next visit, and some never come
                # back; a wording change is accepted only by those who happen to see it.
                if version.material and rng.random() < 0.4:
                    break
                if not version.material and rng.random() < 0.6:
                    continue
                screen = (
                    Screen.RECONSENT
                    if version.material
                    else rng.choice([Screen.REVIEW, Screen.APPLICATION])
                )
                end = versions[i + 1].effective_at if i + 1 < len(versions) else HISTORY_END
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
                    ip_address=rng.choice(IP_ADDRESSES),
                    user_agent=rng.choice(USER_AGENTS),
                )
            )
            previous_at = at
        return rows

    def seed_sources(self) -> None:
        from disclosure.models import DataSource

        for name, holds, port, secret in DEMO_SOURCES:
            _source, created = DataSource.objects.get_or_create(
                name=name,
                defaults={
                    "holds": holds,
                    "endpoint": f"http://127.0.0.1:{port}/",
                    "secret": secret,
                },
            )
            self.count("data sources", created)

    def print_logins(self) -> None:
        site = settings.SITE_URL.rstrip("/")
        self.stdout.write(
            self.style.SUCCESS("\nDemo data is ready. Start the site and sign in:")
            + f"\n\n  Site:     {site}/"
            f"\n  Student:  {STUDENT_EMAIL} / {DEMO_PASSWORD}"
            "\n            (accepted 2018.04 and 2018.10; is asked to accept 2019.03)"
            f"\n  Staff:    {STAFF_EMAIL} / {DEMO_PASSWORD}  (superuser)"
            + "".join(
                f"\n            {email} / {DEMO_PASSWORD}  ({group})"
                for email, _name, group in ROLE_LOGINS
            )
            + f"\n            admin at {site}/admin/"
            "\n\n  Staff sign in with a second factor. Add this key to an authenticator app"
            "\n  (Google Authenticator, 1Password, ...) as a time-based (TOTP) key:"
            f"\n            {DEMO_TOTP_SECRET}"
            f"\n            otpauth://totp/demo-staff?secret={DEMO_TOTP_SECRET}&digits=6&period=30"
            "&issuer=demo"
            "\n  and type its 6-digit code when asked; or type one of these recovery codes"
            "\n  (each works once):"
            + "".join(
                f"\n            {email}: {' '.join(self.recovery_codes_left(email)[:3])}"
                for email in [STAFF_EMAIL, *(login[0] for login in ROLE_LOGINS)]
            )
            + "\n"
        )
