"""What typed schemas would cost the consent API (issue 18's decision, docs/api.md).

Measures, on the consent check's largest body (1,000 triples), in the same run:
  hand      orjson.loads + consent.api.payloads.check_triples (what the API does today)
  pydantic  a pydantic 2 model of the same rules, validating the raw JSON bytes
  DRF       a Django REST framework serializer of the same rules
  ninja     the same body through a django-ninja endpoint (parsing, validation, the
            response), against a plain Django view doing the hand path with RequestFactory
and the response: 1,000 results through a ninja response schema vs orjson.dumps.

    python scripts/bench_api_schema.py          # needs django-ninja and djangorestframework
"""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator  # noqa: E402

from consent.api.payloads import CANONICAL_UUID, MAX_BATCH, MAX_EXACT_FLOAT, check_triples  # noqa: E402

ROUNDS = 200


class Check(BaseModel):
    model_config = ConfigDict(extra="ignore")
    student: StrictStr = Field(pattern=CANONICAL_UUID.pattern)
    employer: int = Field(gt=0, le=2**53 - 1)
    purpose: StrictStr = Field(min_length=1)

    @field_validator("employer", mode="before")
    @classmethod
    def _whole_number(cls, value):
        # the hand rules: no booleans, no numeric strings, 3.0 only below 2**53
        if type(value) is int or (
            type(value) is float and value.is_integer() and 0 < value < MAX_EXACT_FLOAT
        ):
            return int(value)
        raise ValueError("Expected an employer id (a positive integer).")


class CheckBody(BaseModel):
    checks: list[Check] = Field(max_length=MAX_BATCH)


class Result(BaseModel):
    student: str
    employer: int
    purpose: str
    allowed: bool
    reason: str
    basis: dict | None


class Answer(BaseModel):
    results: list[Result]


def timed(function, rounds=ROUNDS) -> float:
    """The median of `rounds` calls, in milliseconds."""
    function()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    checks = [
        {"student": str(uuid.uuid4()), "employer": 1 + i % 50, "purpose": "behaviour_analysis"}
        for i in range(MAX_BATCH)
    ]
    raw = orjson.dumps({"checks": checks})
    results = [{**c, "allowed": True, "reason": "granted", "basis": None} for c in checks]
    if len(check_triples(orjson.loads(raw))) != len(CheckBody.model_validate_json(raw).checks):
        raise SystemExit("the hand and the pydantic validation disagree")

    load = os.getloadavg()[0]
    print(f"load {load:.2f}; {MAX_BATCH} triples, {len(raw):,} bytes; median of {ROUNDS}")
    figures = {
        "hand: orjson.loads + check_triples": timed(lambda: check_triples(orjson.loads(raw))),
        "pydantic: model_validate_json": timed(lambda: CheckBody.model_validate_json(raw)),
        "response, orjson.dumps": timed(lambda: orjson.dumps({"results": results})),
        "response, pydantic schema to JSON": timed(
            lambda: Answer(results=results).model_dump_json()
        ),
    }

    try:
        from rest_framework import serializers
    except ImportError:
        print("djangorestframework not installed: its row is left out")
    else:

        class CheckSerializer(serializers.Serializer):
            student = serializers.RegexField(CANONICAL_UUID.pattern)
            employer = serializers.IntegerField(min_value=1, max_value=2**53 - 1)
            purpose = serializers.CharField(min_length=1)

        class BodySerializer(serializers.Serializer):
            checks = CheckSerializer(many=True, max_length=MAX_BATCH)

        def drf():
            body = BodySerializer(data=orjson.loads(raw))
            if not body.is_valid():
                raise SystemExit(f"DRF refused the body: {body.errors}")

        figures["DRF: orjson.loads + serializer"] = timed(drf, rounds=ROUNDS // 10)

    try:
        from ninja import NinjaAPI
    except ImportError:
        print("django-ninja not installed: the framework rows are left out")
    else:
        api = NinjaAPI(urls_namespace="bench")

        @api.post("/check", response=Answer)
        def ninja_check(request, body: CheckBody):
            return {"results": results}

        @api.post("/check-orjson")
        def ninja_check_orjson(request, body: CheckBody):
            return HttpResponse(orjson.dumps({"results": results}), content_type="application/json")

        def plain_check(request):
            check_triples(orjson.loads(request.body))
            return HttpResponse(orjson.dumps({"results": results}), content_type="application/json")

        ninja_view = next(p.callback for p in api.urls[0] if str(p.pattern) == "check")
        ninja_orjson = next(p.callback for p in api.urls[0] if str(p.pattern) == "check-orjson")
        factory = RequestFactory()

        def request():
            made = factory.post("/check", raw, content_type="application/json")
            made._dont_enforce_csrf_checks = True
            return made

        if ninja_view(request()).status_code != 200:
            raise SystemExit("the ninja endpoint did not answer 200")
        figures["plain Django view, hand path + orjson"] = timed(lambda: plain_check(request()))
        figures["django-ninja endpoint, schema in and out"] = timed(lambda: ninja_view(request()))
        figures["django-ninja endpoint, schema in, orjson out"] = timed(
            lambda: ninja_orjson(request())
        )

    hand = figures["hand: orjson.loads + check_triples"]
    width = max(map(len, figures))
    for name, ms in figures.items():
        print(f"  {name:<{width}}  {ms:7.2f} ms   {ms / hand:5.2f}x the hand validation")


if __name__ == "__main__":
    main()
