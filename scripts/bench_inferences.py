"""POST /api/v1/inferences timings: a batch of 1,000 results through the whole stack, beside
the raw SQL insert of the same rows, in one real server.

    DATABASE_URL=postgres://... .venv/bin/python scripts/bench_inferences.py --students 10000

Uses whatever DATABASE_URL says. Seeds `--students` bulk students (seed_demo, idempotent),
grants `--grants` of them behaviour analysis for one company each (through the service, only
what is missing) and the provision of results to a quarter of those, registers and activates
a benchmark model (once), makes a fresh key with inferences:write, then starts gunicorn with
one worker (DEBUG off) and times `--requests` POSTs of 1,000 new results each (every one
stored; a quarter handed over, so each of those also records its provision), over one
keep-alive connection. Interleaved with each POST, the benchmark's own process inserts the
same number of rows of the same shape into the same table with one `executemany` on a bare
cursor, committed: the yardstick, what the database alone does to store them. It prints p50
and p95 of each, results per second and the ratio of the p50s, then deletes its rows.

What the API adds over the yardstick: the key and the rate limit, reading and validating the
JSON, the students' lock, the models, employers, objections, grants and the requests'
coverage, the duplicates, the provisions of what was handed over, and reading the stored
rows back (inferences/services/intake.py: a fixed number of queries, budgeted in
tests/inferences/test_api.py).
"""

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

warnings.filterwarnings("ignore", "No directory at")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from consent.api.keys import api_key_create  # noqa: E402
from consent.models import ApiClient, Consent, Provision, Purpose  # noqa: E402
from consent.services import consent_grant  # noqa: E402
from inferences.models import Inference, InferenceModel  # noqa: E402
from inferences.services import inference_model_activate  # noqa: E402
from portal.models import Employer, User  # noqa: E402
from scripts.bench_api import ensure_grants, free_port, start_server  # noqa: E402

BENCH_CLIENT = "Benchmark (scripts/bench_inferences.py)"
MODEL_CODE = "bench_decline_likelihood"
BATCH = 1000
WARM_UP = 3
HANDED = 4  # one result in HANDED is handed over


def bench_model() -> InferenceModel:
    model, _created = InferenceModel.objects.get_or_create(
        code=MODEL_CODE,
        version="1.0",
        defaults={
            "purpose": Purpose.objects.get(code="behaviour_analysis"),
            **{
                f"{field}_{language}": f"benchmark {field}"
                for field in ("name", "predicts", "use", "never", "output_meaning")
                for language in ("ja", "en")
            },
            "data_categories_ja": "benchmark",
            "data_categories_en": "benchmark",
            "output_kind": InferenceModel.Output.NUMBER,
            "number_min": 0,
            "number_max": 100,
            "accountable": "scripts/bench_inferences.py",
        },
    )
    if not model.is_active:
        at = timezone.now() - timedelta(days=1)
        model = inference_model_activate(model=model, by=None, at=at)
    return model


def ensure_handover(grants: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The provision of results granted to every HANDED-th of the grants."""
    purpose = Purpose.objects.get(code="provision_to_employer")
    wanted = grants[::HANDED]
    have = set(
        Consent.objects.filter(purpose=purpose, granted=True).values_list(
            "student_id", "employer_id"
        )
    )
    students = User.objects.in_bulk([sid for sid, _e in wanted])
    employers = Employer.objects.in_bulk([eid for _s, eid in wanted])
    for sid, eid in wanted:
        if (sid, eid) not in have:
            consent_grant(student=students[sid], employer=employers[eid], purpose=purpose)
    return set(wanted)


def payload(pairs, public, handover, model, made) -> bytes:
    items = []
    for n, (sid, eid) in enumerate(pairs):
        handed = (sid, eid) in handover
        items.append(
            {
                "id": str(uuid.uuid4()),
                "student": str(public[sid]),
                "model": model.code,
                "model_version": model.version,
                "employer": eid,
                "output": n % 101,
                "made_at": made.isoformat(),
                "input_from": (made - timedelta(days=30)).isoformat(),
                "input_to": made.isoformat(),
                "handed_over_at": made.isoformat() if handed else None,
            }
        )
    return json.dumps({"inferences": items}).encode()


INSERT = (
    "INSERT INTO inferences_inference (student_id, model_id, employer_id, output_label, "
    "output_number, made_at, input_from, input_to, handed_over_at, sender_id, source_id, "
    "received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def raw_insert(pairs, handover, model, sender, made) -> float:
    """The same rows inserted by one executemany on a bare cursor, committed."""
    now = timezone.now()
    rows = [
        (
            sid,
            model.pk,
            eid,
            "",
            float(n % 101),
            made,
            made - timedelta(days=30),
            made,
            made if (sid, eid) in handover else None,
            sender.pk,
            f"raw-{uuid.uuid4()}",
            now,
        )
        for n, (sid, eid) in enumerate(pairs)
    ]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(INSERT, rows)
    return time.perf_counter() - started


def summary(timings: list[float]) -> tuple[float, float, float]:
    ordered = sorted(timings)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
    return p50, p95, BATCH * len(ordered) / sum(ordered)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--grants", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    call_command("migrate", verbosity=0)
    call_command("seed_demo", students=args.students, stdout=io.StringIO())
    grants = ensure_grants(args.grants)
    handover = ensure_handover(grants)
    model = bench_model()
    old = ApiClient.objects.filter(name=BENCH_CLIENT)
    Provision.objects.filter(recorded_by__in=old).delete()
    Inference.objects.filter(sender__in=old).delete()
    old.delete()
    sender, key = api_key_create(name=BENCH_CLIENT, scopes=["inferences:write"])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    public = dict(
        User.objects.filter(pk__in={sid for sid, _e in grants}).values_list("pk", "public_id")
    )
    pairs = (grants * (BATCH // len(grants) + 1))[:BATCH] if grants else []
    if len(pairs) < BATCH:
        raise SystemExit("no grants to send results for")
    made = timezone.now() - timedelta(minutes=1)
    handed = sum((sid, eid) in handover for sid, eid in pairs)

    port = free_port()
    server = start_server(port)
    api_times, raw_times = [], []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        for n in range(WARM_UP + args.requests):
            body = payload(pairs, public, handover, model, made)
            started = time.perf_counter()
            conn.request("POST", "/api/v1/inferences", body=body, headers=headers)
            response = conn.getresponse()
            data = json.loads(response.read())
            elapsed = time.perf_counter() - started
            if response.status != 200 or data["stored"] != BATCH:
                raise SystemExit(
                    f"expected {BATCH} stored, got {response.status} {str(data)[:300]}"
                )
            raw = raw_insert(pairs, handover, model, sender, made)
            if n >= WARM_UP:
                api_times.append(elapsed)
                raw_times.append(raw)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        stored = Inference.objects.filter(sender=sender).count()
        Provision.objects.filter(recorded_by=sender).delete()
        Inference.objects.filter(sender=sender).delete()
        sender.delete()

    api, raw = summary(api_times), summary(raw_times)
    load = os.getloadavg()
    print(
        f"database: {connection.vendor}; gunicorn, 1 worker, DEBUG off; {BATCH:,} results per "
        f"request ({handed:,} handed over, each with its provision), {args.requests} requests, "
        f"interleaved with the raw insert; {stored:,} rows made (deleted); "
        f"load average {load[0]:.1f}"
    )
    print(f"{'':<44}{'p50 ms':>9}{'p95 ms':>9}{'rows/s':>11}")
    for name, (p50, p95, rate) in (
        ("POST /api/v1/inferences", api),
        ("raw SQL insert of the same rows (cursor)", raw),
    ):
        print(f"{name:<44}{p50:>9.1f}{p95:>9.1f}{rate:>11,.0f}")
    print(f"ratio p50 API / raw insert: {api[0] / raw[0]:.1f}x (information, no goal)")


if __name__ == "__main__":
    main()
