"""One page of each PDF document, in Japanese, as a PNG for the README (docs/images/).

    .venv/bin/python scripts/pdf_images.py [--out docs/images] [--resolution 70]

Builds the demo data (`seed_demo`) in a throwaway SQLite database, then renders the policy
acceptance receipt, a consent receipt, a disclosure report and a deletion certificate with
the portal's own functions, and turns one page of each into a PNG with poppler's `pdftoppm`
(Debian's poppler-utils). Nothing outside --out is written; the database is deleted after.
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# (file name, page shown): the report's first page is its contents; its second has tables.
IMAGES = {
    "receipt": 1,
    "consent-receipt": 1,
    "disclosure-report": 2,
    "certificate": 1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BASE_DIR / "docs" / "images")
    parser.add_argument("--resolution", type=int, default=70, help="dots per inch (default 70)")
    args = parser.parse_args()
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm is missing: apt-get install poppler-utils")

    with tempfile.TemporaryDirectory(prefix="pdf-images-") as work:
        work = Path(work)
        # Before Django starts: a database of our own, tasks in-process, mail kept in memory.
        os.environ.update(
            DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
            CELERY_BROKER_URL="",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            MEDIA_ROOT=str(work / "media"),
            DEBUG="1",
            LOG_LEVEL="WARNING",
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        sys.path.insert(0, str(BASE_DIR))
        warnings.filterwarnings("ignore", "No directory at")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("seed_demo", verbosity=0, stdout=io.StringIO())
        documents = render_documents()
        args.out.mkdir(parents=True, exist_ok=True)
        for name, content in documents.items():
            pdf = work / f"{name}.pdf"
            pdf.write_bytes(content)
            page = IMAGES[name]
            prefix = work / name
            subprocess.run(  # noqa: S603 - a fixed command on files we wrote
                ["pdftoppm", "-png", "-r", str(args.resolution), "-f", str(page), "-l", str(page)]  # noqa: S607
                + ["-singlefile", str(pdf), str(prefix)],
                check=True,
                timeout=120,
            )
            target = args.out / f"{name}.png"
            shutil.move(prefix.with_suffix(".png"), target)
            print(f"{target}: page {page}, {target.stat().st_size // 1024} KB")


def render_documents() -> dict[str, bytes]:
    """The four documents of the demo story, in Japanese, from the seeded data."""
    from django.db import transaction

    from consent.models import ConsentEvent, PolicyAcceptance
    from consent.receipts import acceptance_receipt_pdf, event_receipt_pdf
    from demo.load import load
    from disclosure.models import DataRequest, RecipientTask
    from disclosure.reports import certificate_pdf, disclosure_report_files
    from disclosure.services import recipient_task_answer

    student_email = load().logins[0].email  # the demo student (README "Demo logins")

    acceptance = (
        PolicyAcceptance.objects.filter(student__email=student_email)
        .select_related("version", "student")
        .latest("accepted_at")
    )
    event = (
        ConsentEvent.objects.filter(action=ConsentEvent.Action.GRANT, language="ja")
        .select_related("student", "employer", "purpose", "policy_version")
        .order_by("id")
        .first()
    )
    disclosure = DataRequest.objects.filter(kind=DataRequest.Kind.DISCLOSURE, language="ja").first()
    deletion = DataRequest.objects.filter(kind=DataRequest.Kind.DELETION, language="ja").first()
    # The demo leaves one company's answer outstanding: answer it, so the certificate is
    # the one a student gets at the end.
    for task in deletion.tasks.exclude(status=RecipientTask.Status.ANSWERED):
        with transaction.atomic():
            recipient_task_answer(
                task=task,
                answer=RecipientTask.Answer.HELD_NONE,
                answered_by="総務部 法務課 田中",
                statement="当社では該当する個人データを保有していないことを確認しました。",
            )
    [(_kind, _name, _type, report)] = [
        f for f in disclosure_report_files(request_id=disclosure.pk) if f[2] == "application/pdf"
    ]
    return {
        "receipt": acceptance_receipt_pdf(acceptance),
        "consent-receipt": event_receipt_pdf(event),
        "disclosure-report": report,
        "certificate": certificate_pdf(request_id=deletion.pk)[0],
    }


if __name__ == "__main__":
    main()
