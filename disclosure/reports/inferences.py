"""A report's inferences (what the site's registered models inferred about the student): read
once, oldest first, a chunk at a time, as the activity records are (activity.py), and handed to
the JSON's array and to the summary the PDF shows per model (how many results, for which
companies, the latest, how many disputed, and whether the student objected). Nothing keeps a
list of every result: the summary holds counts per model and company, and the latest
`PDF_LATEST_INFERENCES` results of each model.

The disputes and objections are few (one open dispute per result, one objection per model):
each is read in one query, before the pass, and joined to the rows by id."""

from collections import deque
from collections.abc import Iterator
from itertools import islice

from django.utils import timezone

from inferences.models import Inference, InferenceDispute, InferenceModel, InferenceObjection
from portal.models import User

INFERENCE_CHUNK = 2000
# The latest results of each model the PDF lists; the JSON holds every one.
PDF_LATEST_INFERENCES = 20

_FIELDS = (
    "id",
    "made_at",
    "model_id",
    "employer_id",
    "employer__name",
    "employer__name_en",
    "output_label",
    "output_number",
    "input_from",
    "input_to",
    "handed_over_at",
    "received_at",
)
# One result as the pass hands it on, in _FIELDS' order (times in Japan time).
Row = tuple


def inference_chunks(student: User) -> Iterator[list[Row]]:
    """The student's results, oldest first, `INFERENCE_CHUNK` at a time: one query."""
    rows = (
        Inference.objects.filter(student=student)
        .order_by("made_at", "id")
        .values_list(*_FIELDS)
        .iterator(chunk_size=INFERENCE_CHUNK)
    )
    zone = timezone.get_current_timezone()
    while chunk := list(islice(rows, INFERENCE_CHUNK)):
        yield [
            (
                pk,
                made.astimezone(zone),
                model_id,
                employer_id,
                name,
                name_en,
                label,
                number,
                start.astimezone(zone),
                end.astimezone(zone),
                handed.astimezone(zone) if handed else None,
                received.astimezone(zone),
            )
            for pk, made, model_id, employer_id, name, name_en, label, number, start, end, handed, received in chunk  # noqa: E501
        ]


def _output(label: str, number: float | None) -> str | float:
    return label if number is None else number


class InferenceContext:
    """What the pass needs beside the rows: the models (described), the disputes by result
    and the objections by model code. Three queries, whatever the number of results."""

    def __init__(self, student: User) -> None:
        self.disputes: dict[int, list[dict]] = {}
        for d in InferenceDispute.objects.filter(student=student).order_by("filed_at", "pk"):
            self.disputes.setdefault(d.inference_id, []).append(
                {
                    "filed_at": d.filed_at,
                    "statement": d.statement,
                    "answered_at": d.answered_at,
                    "outcome": d.outcome or None,
                    "answer": d.answer,
                }
            )
        objections = list(
            InferenceObjection.objects.filter(student=student)
            .select_related("model")
            .order_by("objected_at", "pk")
        )
        self.objections = {o.model_code: o.objected_at for o in objections}
        # The version shown when the student objected, to name a model with no result left.
        self.objected_models = {o.model_code: o.model for o in objections}
        # The models that made a result about the student, and those objected to.
        self.models = {
            m.pk: m
            for m in InferenceModel.objects.filter(inferences__student=student)
            .select_related("purpose")
            .distinct()
            .order_by("code", "version")
        }
        self.model_codes = {pk: m.code for pk, m in self.models.items()}

    def record(self, row: Row) -> dict:
        """One result as the JSON writes it (times ISO 8601 with their offset)."""
        (pk, made, model_id, employer_id, name, _name_en, label, number, start, end, handed,
         received) = row  # fmt: skip
        model = self.models.get(model_id)
        disputes = self.disputes.get(pk, [])
        return {
            "id": pk,
            "model": model.code if model else None,
            "model_version": model.version if model else None,
            "employer_id": employer_id,
            "employer": name,
            "output": _output(label, number),
            "made_at": made.isoformat(),
            "input_from": start.isoformat(),
            "input_to": end.isoformat(),
            "handed_over_at": handed.isoformat() if handed else None,
            "received_at": received.isoformat(),
            "disputed": bool(disputes),
            "disputes": [
                {
                    **d,
                    "filed_at": d["filed_at"].isoformat(),
                    "answered_at": d["answered_at"].isoformat() if d["answered_at"] else None,
                }
                for d in disputes
            ],
        }

    def models_data(self) -> list[dict]:
        """Each model that made a result about the student, described as the student's page
        describes it, in both languages."""
        return [
            {
                "code": m.code,
                "version": m.version,
                "purpose": m.purpose.code,
                "activated_at": m.activated_at,
                **{
                    f"{field}_{language}": getattr(m, f"{field}_{language}")
                    for field in (
                        "name",
                        "predicts",
                        "data_categories",
                        "use",
                        "never",
                        "output_meaning",
                    )
                    for language in ("ja", "en")
                },
                "output_kind": m.output_kind,
                "accountable": m.accountable,
            }
            for m in self.models.values()
        ]

    def objections_data(self) -> list[dict]:
        """What the student objected to: the model's code and when (never a result)."""
        return [{"model": code, "objected_at": at} for code, at in self.objections.items()]


class InferenceSummary:
    """Per model code (every version together): how many results, for which companies
    (how many, how many handed over, the latest), how many disputed, and the latest
    results. Its size depends on the models and companies, not on the results."""

    def __init__(self, context: InferenceContext, latest: int = PDF_LATEST_INFERENCES) -> None:
        self.context = context
        self.latest_size = latest
        self.results = 0
        # code -> {"results", "disputed", "first_at", "last_at", "companies", "latest"}
        self.by_model: dict[str, dict] = {}

    def add(self, chunk: list[Row]) -> None:
        codes, disputes = self.context.model_codes, self.context.disputes
        for row in chunk:
            pk, made, model_id, employer_id, name, name_en, *_rest = row
            handed = row[10]
            code = codes.get(model_id, "")
            entry = self.by_model.get(code)
            if entry is None:
                entry = self.by_model[code] = {
                    "results": 0,
                    "disputed": 0,
                    "handed_over": 0,
                    "first_at": made,
                    "last_at": made,
                    "companies": {},
                    "latest": deque(maxlen=self.latest_size),
                }
            entry["results"] += 1
            entry["last_at"] = made
            entry["disputed"] += pk in disputes
            entry["handed_over"] += handed is not None
            company = entry["companies"].get(employer_id)
            if company is None:
                company = entry["companies"][employer_id] = [name, name_en, 0, 0, made]
            company[2] += 1
            company[3] += handed is not None
            company[4] = made
            entry["latest"].append(row)
        self.results += len(chunk)

    def employers(self) -> Iterator[tuple[int, str, str]]:
        for entry in self.by_model.values():
            for employer_id, (name, name_en, *_rest) in entry["companies"].items():
                yield employer_id, name, name_en

    def as_data(self) -> list[dict]:
        """The summary as the report's data: one entry per model code, in code order, its
        companies with the most results first (no result row: the JSON has them all)."""
        return [
            {
                "model": code,
                "versions": sorted(
                    {m.version for m in self.context.models.values() if m.code == code}
                ),
                "results": entry["results"],
                "disputed": entry["disputed"],
                "handed_over": entry["handed_over"],
                "first_at": entry["first_at"],
                "last_at": entry["last_at"],
                "objected_at": self.context.objections.get(code),
                "by_company": [
                    {
                        "employer_id": employer_id,
                        "employer": name,
                        "results": count,
                        "handed_over": handed,
                        "last_at": last,
                    }
                    for employer_id, (name, _en, count, handed, last) in sorted(
                        entry["companies"].items(),
                        key=lambda item: (-item[1][2], item[1][0] or "", item[0]),
                    )
                ],
            }
            for code, entry in sorted(self.by_model.items())
        ]

    def latest(self, code: str) -> list[Row]:
        entry = self.by_model.get(code)
        return list(entry["latest"]) if entry else []
