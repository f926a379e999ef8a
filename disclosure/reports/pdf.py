"""The disclosure report as PDF (and the HTML WeasyPrint renders): the data's rows with
labels in the request's language; of the activity records, a summary and the latest rows."""

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.utils import translation

from audit.models import StaffRead
from audit.reads import staff_role_label
from consent.models import EMPLOYER_PLACEHOLDERS, ConsentEvent, ConsentScreen, Screen
from disclosure.models import (
    DataRequest,
    RecipientTask,
    RequestEvent,
    SourceTask,
    reader_statement,
)
from disclosure.reports.activity import Row
from disclosure.reports.data import _Report
from portal.models import ActivityRecord, Language
from portal.shared.pdf import pdf_html, pdf_render

REPORT_TEMPLATE = "disclosure/report_pdf.html"


def _label(choices) -> dict:
    return {value: str(label) for value, label in choices}


def _report_context(data: dict, language: str, latest: Iterable[Row]) -> dict:
    """What the template shows: the report's rows with labels in `language` (call inside
    translation.override). Company and purpose names in the language where there is one.
    Of the activity records, their summary and the `latest` rows (oldest first)."""
    names = {
        e["id"]: (e["name_en"] if language == Language.EN and e["name_en"] else e["name"])
        for e in data["employers"]
    }
    titles = {
        p["code"]: (p["title_en"] if language == Language.EN and p["title_en"] else p["title_ja"])
        for p in data["purposes"]
    }

    def purpose(code: str, company_name: str) -> str:
        # "Giving the result to <employer>": the company's name in place of the placeholder.
        title = titles.get(code, code)
        for placeholder in EMPLOYER_PLACEHOLDERS:
            title = title.replace(placeholder, company_name)
        return title

    screens = _label(Screen.choices)
    looks_what = _label(StaffRead.What.choices)
    consent_screens = _label(ConsentScreen.choices)
    actions = _label(ConsentEvent.Action.choices)
    actors = _label(ConsentEvent.Actor.choices)
    languages = _label(Language.choices)
    activity_kinds = _label(ActivityRecord.Kind.choices)
    request_kinds = _label(DataRequest.Kind.choices)
    request_statuses = _label(DataRequest.Status.choices)
    formats = _label(DataRequest.Format.choices)
    source_statuses = _label(SourceTask.Status.choices)
    source_answers = _label(SourceTask.Answer.choices)
    task_statuses = _label(RecipientTask.Status.choices)
    answers = _label(RecipientTask.Answer.choices)
    vias = _label(RecipientTask.Via.choices)
    event_kinds = _label(RequestEvent.Kind.choices)
    event_actors = _label(RequestEvent.Actor.choices)

    def company(row: dict) -> str:
        return names.get(row.get("employer_id"), row.get("employer") or "")

    consents_by_company: dict[int, dict] = {}
    for c in data["consents"]:
        entry = consents_by_company.setdefault(
            c["employer_id"], {"company": company(c), "rows": []}
        )
        entry["rows"].append({**c, "purpose_title": purpose(c["purpose"], company(c))})
    return {
        "data": data,
        "profile": {
            **data["profile"],
            "language_label": languages.get(data["profile"]["language"], ""),
        },
        "acceptances": [
            {
                **a,
                "screen_label": screens.get(a["screen"], a["screen"]),
                "language_label": languages.get(a["language"], a["language"]),
            }
            for a in data["policy_acceptances"]
        ],
        "consents_by_company": sorted(consents_by_company.values(), key=lambda e: e["company"]),
        "consent_events": [
            {
                **e,
                "company": company(e),
                "purpose_title": purpose(e["purpose"], company(e)),
                "action_label": actions.get(e["action"], e["action"]),
                "screen_label": consent_screens.get(e["screen"], e["screen"]),
                "actor_label": actors.get(e["actor"], e["actor"]),
            }
            for e in data["consent_events"]
        ],
        "recipients": [
            {
                **r,
                "company": company(r),
                "purpose_titles": [purpose(p, company(r)) for p in r["purposes"]],
            }
            for r in data["recipients"]
        ],
        "provisions": [
            {**p, "company": company(p), "purpose_title": purpose(p["purpose"], company(p))}
            for p in data["provisions"]
        ],
        "activity": _activity_context(
            data["activity_summary"], latest, names=names, kinds=activity_kinds
        ),
        "staff_looks": [
            {
                **look,
                "role_label": staff_role_label(look["role"]),
                "what_label": looks_what.get(look["what"], look["what"]),
            }
            for look in data["staff_looks"]
        ],
        "sources": [
            {
                **src,
                "status_label": source_statuses.get(src["status"], src["status"]),
                "answer_label": source_answers.get(src["answer"], "") if src["answer"] else "",
                "lines": source_data_lines(src["data"]) if src["data"] else [],
            }
            for src in data.get("sources", [])
        ],
        "requests": [
            {
                **r,
                "kind_label": request_kinds.get(r["kind"], r["kind"]),
                "status_label": request_statuses.get(r["status"], r["status"]),
                "format_label": formats.get(r["delivery_format"], r["delivery_format"]),
                "companies": [
                    {
                        **t,
                        "company": company(t),
                        "status_label": task_statuses.get(t["status"], t["status"]),
                        "answer_label": answers.get(t["answer"], "") if t["answer"] else "",
                        "via_label": vias.get(t["answered_via"], "") if t["answered_via"] else "",
                        # An attestation in the reader's words; "statement" keeps the exact
                        # words the company confirmed (also in the JSON).
                        "reader_statement": reader_statement(
                            answer=t["answer"] or "", statement=t["statement"]
                        ),
                    }
                    for t in r["companies"]
                ],
                "timeline": [
                    {
                        **e,
                        "kind_label": event_kinds.get(e["kind"], e["kind"]),
                        "actor_label": event_actors.get(e["actor"], e["actor"]),
                    }
                    for e in r["timeline"]
                ],
            }
            for r in data["requests"]
        ],
    }


# The PDF shows at most this many lines of what one source disclosed (the JSON has it all).
SOURCE_PDF_LINES = 200


def source_data_lines(data: Any) -> list[str]:
    """A source's data as lines for the PDF: one per row ("key: value · ..."), else per key."""
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        items = data["rows"]
    elif isinstance(data, dict):
        items = [{key: value} for key, value in data.items()]
    else:
        items = [data]
    lines = []
    for item in items[:SOURCE_PDF_LINES]:
        if isinstance(item, dict):
            lines.append(" · ".join(f"{k}: {_short(v)}" for k, v in item.items()))
        else:
            lines.append(_short(item))
    if len(items) > SOURCE_PDF_LINES:
        lines.append(f"… (+{len(items) - SOURCE_PDF_LINES})")
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"


def _activity_context(
    summary: dict, latest: Iterable[Row], *, names: dict[int, str], kinds: dict[str, str]
) -> dict:
    """The activity records' section: the summary by company and by month and kind (the
    kinds that occur, as columns), how many are disputed, and the latest records, newest
    first, each with its correction's mark (or None)."""
    present = [k["kind"] for k in summary["by_kind"]]
    rows = [
        (
            at,
            kinds.get(kind, kind),
            names.get(employer_id, name or "") if employer_id else "",
            detail,
            disputed,
        )
        for _pk, at, kind, employer_id, name, _name_en, detail, disputed in reversed(list(latest))
    ]
    return {
        "records": summary["records"],
        "disputed": summary["disputed"],
        "first_at": summary["first_at"],
        "last_at": summary["last_at"],
        "by_company": [
            {**c, "company": names.get(c["employer_id"], c["employer"] or "")}
            for c in summary["by_company"]
        ],
        "kinds": [kinds.get(kind, kind) for kind in present],
        "kind_totals": [k["records"] for k in summary["by_kind"]],
        "by_month": [
            {
                "month": date.fromisoformat(f"{m['month']}-01"),
                "cells": [m["kinds"].get(kind, 0) for kind in present],
                "records": m["records"],
            }
            for m in summary["by_month"]
        ],
        "latest": rows,
        "shown": len(rows),
    }


def _inferences_context(report: _Report, language: str, names: dict[int, str]) -> list[dict]:
    """Per model: its description in `language`, its summary (companies by name), and its
    latest results, newest first, each marked handed over and disputed."""
    summary = report.inferences
    context = summary.context
    newest = {}
    for model in context.models.values():  # by code and version
        newest[model.code] = model
    models = []
    for entry in report.data["inference_summary"]:
        model = newest.get(entry["model"])
        rows = []
        for row in reversed(summary.latest(entry["model"])):
            pk, made, _model_id, employer_id, name, _en, label, number, *_times = row
            rows.append(
                {
                    "made_at": made,
                    "output": label if number is None else f"{number:g}",
                    "company": names.get(employer_id, name or ""),
                    "handed_over": row[10] is not None,
                    "disputed": pk in context.disputes,
                }
            )
        models.append(
            {
                **entry,
                "name": model.name(language) if model else entry["model"],
                "predicts": model.predicts(language) if model else "",
                "never": model.never(language) if model else "",
                "by_company": [
                    {**c, "company": names.get(c["employer_id"], c["employer"] or "")}
                    for c in entry["by_company"]
                ],
                "latest": rows,
                "shown": len(rows),
            }
        )
    return models


def _objected_without_results(report: _Report, language: str) -> list[dict]:
    """The models the student objected to of which no result is left (erased, or none made)."""
    context, with_results = report.inferences.context, report.inferences.by_model
    return [
        {"name": model.name(language), "code": code, "objected_at": context.objections[code]}
        for code, model in context.objected_models.items()
        if code not in with_results
    ]


def _pdf_context(
    report: _Report, *, request: DataRequest, full_files: list[tuple[str, str]]
) -> dict:
    """What the template is given for a closed report (its activity records passed);
    `full_files` are (name, kind) of the files that come with the PDF and hold every record."""
    with translation.override(request.language):
        context = _report_context(report.data, request.language, report.activity.latest)
        names = {
            e["id"]: (
                e["name_en"] if request.language == Language.EN and e["name_en"] else e["name"]
            )
            for e in report.data["employers"]
        }
        inference_models = _inferences_context(report, request.language, names)
    return {
        **context,
        "request": request,
        "full_files": full_files,
        "inference_models": inference_models,
        "objected_without_results": _objected_without_results(report, request.language),
    }


def _report_pdf(
    report: _Report, *, request: DataRequest, full_files: list[tuple[str, str]]
) -> bytes:
    return pdf_render(
        template=REPORT_TEMPLATE,
        context=_pdf_context(report, request=request, full_files=full_files),
        language=request.language,
    )


def _report_html(
    report: _Report, *, request: DataRequest, full_files: list[tuple[str, str]]
) -> str:
    return pdf_html(
        template=REPORT_TEMPLATE,
        context=_pdf_context(report, request=request, full_files=full_files),
        language=request.language,
    )
