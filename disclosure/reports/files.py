"""The report's files for a request, in its delivery format: the PDF and/or the JSON, from
one gathering."""

import json

from disclosure.models import DataRequest
from disclosure.reports._common import Kind
from disclosure.reports.data import _gather, _jsonable
from disclosure.reports.pdf import _report_pdf


def _report_json(data: dict) -> bytes:
    return json.dumps(_jsonable(data), ensure_ascii=False, indent=2).encode("utf-8")


def disclosure_report_files(*, request_id: int) -> list[tuple[str, str, str, bytes]]:
    """[(RequestFile.Kind, file name, content type, bytes)] in the request's delivery format:
    `<reference>-report.pdf` and/or `<reference>-report.json`, from one gathering."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    data = _gather(request.student, request=request)
    fmt = request.delivery_format
    files = []
    if fmt in (DataRequest.Format.PDF_JSON, DataRequest.Format.PDF):
        files.append(
            (
                Kind.REPORT_PDF,
                f"{request.reference}-report.pdf",
                "application/pdf",
                _report_pdf(data, request=request),
            )
        )
    if fmt in (DataRequest.Format.PDF_JSON, DataRequest.Format.JSON):
        files.append(
            (
                Kind.REPORT_JSON,
                f"{request.reference}-report.json",
                "application/json",
                _report_json(data),
            )
        )
    return files
