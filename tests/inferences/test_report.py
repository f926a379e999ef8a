"""The disclosure report holds what the site inferred about the student: every result in the
JSON (with its disputes), a summary per model in the PDF, streamed as the activity records
are, in a fixed number of queries."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from disclosure.reports import disclosure_report_data, disclosure_report_files
from disclosure.services import request_file
from inferences.models import Inference
from inferences.services import inference_dispute, inference_model_object
from tests.disclosure.test_reports import FILES_QUERIES, REPORT_QUERIES, flat, pdf_text

pytestmark = pytest.mark.django_db


def files(request) -> dict[str, bytes]:
    return {
        kind: content for kind, _n, _t, content in disclosure_report_files(request_id=request.pk)
    }


def test_the_json_holds_every_result_with_its_dispute_and_the_objection(scored):
    inference_dispute(student=scored.student, inference=scored.results["r-2"], statement="違う")
    inference_model_object(student=scored.student, model=scored.model)
    request = request_file(student=scored.student, kind="disclosure", delivery_format="json")

    report = json.loads(files(request)["report_json"])

    assert report["counts"]["inferences"] == 3
    by_id = {r["id"]: r for r in report["inferences"]}
    first = by_id[scored.results["r-1"].pk]
    assert first["model"] == "decline_likelihood" and first["model_version"] == "1.0"
    assert (first["output"], first["employer_id"]) == (81, scored.aoba.pk)
    assert first["handed_over_at"] is not None and first["disputed"] is False
    disputed = by_id[scored.results["r-2"].pk]
    assert disputed["disputed"] is True
    assert [d["statement"] for d in disputed["disputes"]] == ["違う"]
    assert by_id[scored.results["r-3"].pk]["handed_over_at"] is None
    [summary] = report["inference_summary"]
    assert (summary["results"], summary["handed_over"], summary["disputed"]) == (3, 1, 1)
    assert summary["objected_at"] is not None
    assert [c["employer_id"] for c in summary["by_company"]] == [scored.aoba.pk, scored.kaede.pk]
    [model] = report["inference_models"]
    assert model["never_en"] and model["purpose"] == scored.analysis.code
    assert [o["model"] for o in report["inference_objections"]] == ["decline_likelihood"]
    assert {e["id"] for e in report["employers"]} >= {scored.aoba.pk, scored.kaede.pk}


def test_the_streamed_json_reads_back_as_the_report_data(scored):
    inference_dispute(student=scored.student, inference=scored.results["r-3"], statement="違う")
    request = request_file(student=scored.student, kind="disclosure", delivery_format="json")

    from_file = json.loads(files(request)["report_json"])
    data = disclosure_report_data(scored.student, request=request)

    assert from_file.pop("generated_at") and data.pop("generated_at")
    assert from_file == data
    assert list(from_file) == list(data)


def test_the_pdf_summarises_each_model_and_marks_a_disputed_result(scored):
    inference_dispute(student=scored.student, inference=scored.results["r-2"], statement="違う")
    request = request_file(student=scored.student, kind="disclosure", language="en")

    _reader, pages = pdf_text(files(request)["report_pdf"])
    text = flat("".join(pages))

    assert flat("What the site inferred about you") in text
    assert flat(scored.model.name_en) in text
    assert flat(scored.model.never_en) in text
    assert "Kaede" in text and "disputed" in text


def many_results(scored, count: int) -> None:
    now = timezone.now()
    Inference.objects.bulk_create(
        Inference(
            student=scored.student,
            model=scored.model,
            employer=scored.kaede if n % 2 else scored.aoba,
            output_number=float(n % 100),
            made_at=now - timedelta(minutes=n + 1),
            input_from=now - timedelta(days=30),
            input_to=now - timedelta(minutes=n + 1),
            sender=scored.pipeline,
            source_id=f"bulk-{n}",
        )
        for n in range(count)
    )


def test_thousands_of_results_cost_the_same_queries_and_a_short_pdf(
    scored, django_assert_max_num_queries
):
    request = request_file(student=scored.student, kind="disclosure")
    many_results(scored, 4500)  # more than two chunks

    with django_assert_max_num_queries(REPORT_QUERIES):
        data = disclosure_report_data(scored.student, request=request)
    assert len(data["inferences"]) == 4503
    with django_assert_max_num_queries(FILES_QUERIES):
        made = files(request)

    assert json.loads(made["report_json"])["counts"]["inferences"] == 4503
    reader, _pages = pdf_text(made["report_pdf"])
    assert len(reader.pages) < 20  # the latest 20 results, not 4,503


def test_a_model_objected_to_whose_results_were_erased_is_still_named(
    scored, django_capture_on_commit_callbacks
):
    inference_model_object(student=scored.student, model=scored.model)
    Inference.objects.all().delete()  # as a deletion request for these companies would
    request = request_file(student=scored.student, kind="disclosure", language="en")

    made = files(request)

    text = flat("".join(pdf_text(made["report_pdf"])[1]))
    assert flat("You objected to this model on") in text and "decline_likelihood" in text
    report = json.loads(made["report_json"])
    assert report["inferences"] == [] and report["inference_summary"] == []
    assert [o["model"] for o in report["inference_objections"]] == ["decline_likelihood"]
