"""Page timings on a large data set: `make bench` (see the Makefile for the knobs).

Seeds `--students` bulk students (idempotent), then requests each student page many times
through Django's full stack (middleware, sessions, templates) in-process and prints
latency percentiles and requests per second. Uses whatever DATABASE_URL says.

Then the consent page of a student connected to 30 companies, with the first page of 20
others (50 company cards), against a static page of the same bytes served in the same run
by the same stack (the same signed-in student, every middleware), interleaved, in Japanese
and in English (every view writes its 50 cards: nothing is kept, consent/views/cards.py),
each with the ratio of the p50s, the goal (at most 3x) and the machine's load.
"""

import argparse
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

# whitenoise warns about a missing STATIC_ROOT when collectstatic has not run; irrelevant here.
warnings.filterwarnings("ignore", "No directory at")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import clear_url_caches, path, reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from consent.decorators import data_rights_page  # noqa: E402
from consent.models import PolicyAcceptance, PolicyVersion, Purpose  # noqa: E402
from consent.services import (  # noqa: E402
    consent_grant,
    consent_withdraw,
    policy_accept,
    provision_record,
)
from portal import urls  # noqa: E402
from portal.models import (  # noqa: E402
    ActivityRecord,
    Employer,
    User,
    corporate_number_check_digit,
)

CONSENTS_STUDENT = "bench-consents@example.jp"
CONNECTED, OTHERS = 30, 20  # companies on the page: connected, then a page of the others
CARD_GOAL = 3.0  # the consent page at most this many times the static page's p50


def measure(client: Client, url: str, count: int) -> list[float]:
    client.get(url)  # warm up caches and the template loader
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return timings


def consents_student() -> User:
    """A student connected to 30 companies (10 applied to; 10 granted, some both purposes,
    some provided to; 10 granted then withdrawn), among at least 50 active companies. Made
    once, through the services."""
    student = User.objects.filter(email=CONSENTS_STUDENT).first()
    if student is not None:
        return student
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    active = Employer.objects.filter(is_active=True).count()
    for n in range(max(0, CONNECTED + OTHERS + 10 - active)):
        base = f"8{n:011d}"
        Employer.objects.create(
            name=f"ベンチマーク商事株式会社 第{n + 1}事業部",
            name_en=f"Benchmark Trading Co., Ltd. Division {n + 1}",
            corporate_number=f"{corporate_number_check_digit(base)}{base}",
        )
    student = User.objects.create_user(CONSENTS_STUDENT, None, display_name="頁試 験子")
    version = PolicyVersion.objects.published().order_by("-effective_at").first()
    policy_accept(
        student=student,
        version=version,
        screen="signup",
        language="ja",
        shown_sha256=version.stored_sha256("ja"),
    )
    analysis, provision = Purpose.objects.filter(requires_opt_in=True).order_by("pk")[:2]
    rng = random.Random(2019)  # noqa: S311 - a repeatable choice, not a secret
    employers = rng.sample(list(Employer.objects.filter(is_active=True)), CONNECTED)
    for index, employer in enumerate(employers):
        if index < 10:
            ActivityRecord.objects.create(
                student=student, employer=employer, kind="application", occurred_at=timezone.now()
            )
            continue
        consent_grant(student=student, employer=employer, purpose=analysis)
        if index % 2:
            consent_grant(student=student, employer=employer, purpose=provision)
        if index % 3 == 0:
            provision_record(
                student=student, employer=employer, purpose=analysis, data_items="閲覧履歴"
            )
        if index >= 20:
            consent_withdraw(student=student, employer=employer, purpose=analysis)
    return student


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        one, five = loadavg.read().split()[:2]
    return f"load {one}/{five}"


def consent_page(count: int) -> None:
    """The consent page against a static page of its bytes, interleaved, in one run."""
    student = consents_student()
    client = Client()
    client.force_login(student)
    address = reverse("consent:consent_list")
    static = {}

    # The page's own path through the stack: signed in, and exempt as it is from the
    # check for a pending policy acceptance (before session 22 the static page alone made
    # that check, 1.5 ms of its 3 ms, which flattered every ratio below).
    @login_required
    @data_rights_page
    def static_page(request):
        return HttpResponse(static["body"], content_type="text/html; charset=utf-8")

    urls.urlpatterns.append(path("_bench/static-page/", static_page))
    clear_url_caches()
    print(
        f"\nconsent page, {CONNECTED} connected companies and {OTHERS} others "
        f"(each against a static page of its bytes, same stack, same run)"
    )
    print(f"{'':<37}{'bytes':>8}{'p50 ms':>8}{'static':>8}{'ratio':>8}  goal")
    for label, language in (("ja", "ja"), ("en", "en")):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        body = client.get(address).content
        if f'lang="{language}"'.encode() not in body:
            raise SystemExit(f"the consent page did not answer in {language}")
        static["body"] = body
        page_times, static_times, page_cpu, static_cpu = [], [], [], []
        for _ in range(count):
            started, cpu = time.perf_counter(), time.process_time()
            if client.get(address).status_code != 200:
                raise SystemExit(f"{address} failed")
            page_times.append(time.perf_counter() - started)
            page_cpu.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            client.get("/_bench/static-page/")
            static_times.append(time.perf_counter() - started)
            static_cpu.append(time.process_time() - cpu)
        page_p50 = statistics.median(page_times) * 1000
        static_p50 = statistics.median(static_times) * 1000
        ratio = page_p50 / static_p50
        verdict = "ok" if ratio <= CARD_GOAL else "FAIL"
        # This process's CPU time, which other jobs on the machine disturb less than the
        # clock: all of the work on SQLite, the Python side only on PostgreSQL.
        cpu_ratio = statistics.median(page_cpu) / statistics.median(static_cpu)
        print(
            f"{label:<37}{len(body):>8,}{page_p50:>8.1f}{static_p50:>8.1f}{ratio:>6.2f}x"
            f"  <= {CARD_GOAL:.0f}x {verdict:<4}  (cpu {cpu_ratio:.2f}x)  {load_average()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    settings.ALLOWED_HOSTS.append("testserver")
    # Static URLs without collectstatic's manifest; the pages are what is measured.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    call_command("seed_demo", students=args.students, verbosity=0)

    # The student with the longest acceptance history: the page must not care.
    acceptance = (
        PolicyAcceptance.objects.filter(student__email__startswith="bulk-")
        .order_by("-student_id")
        .select_related("student")
        .first()
    )
    student = acceptance.student
    client = Client()
    client.force_login(student)
    pages = [
        ("My privacy policies", reverse("consent:policy_list"), args.requests),
        (
            "Acceptance, full text",
            reverse("consent:acceptance_detail", args=[acceptance.receipt_id]),
            args.requests,
        ),
        (
            "Receipt JSON",
            reverse("consent:receipt_json", args=[acceptance.receipt_id]),
            args.requests,
        ),
        ("Receipt PDF", reverse("consent:receipt_pdf", args=[acceptance.receipt_id]), 10),
        ("Public policy text", reverse("consent:version_text", args=["2019.03"]), args.requests),
    ]
    students = type(student).objects.count()
    acceptances = PolicyAcceptance.objects.count()
    print(f"database: {connection.vendor}; {students:,} users, {acceptances:,} acceptances")
    print(f"{'page':<24}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}")
    for name, url, count in pages:
        timings = sorted(measure(client, url, count))
        p50 = statistics.median(timings) * 1000
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))] * 1000
        rate = len(timings) / sum(timings)
        print(f"{name:<24}{count:>9}{p50:>9.1f}{p95:>9.1f}{rate:>9.1f}")
    consent_page(args.requests)


if __name__ == "__main__":
    main()
